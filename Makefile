# cot: `make run` starts everything with demo data; `make test` runs every check.
PYTHON ?= python3.11
VENV := .venv
STAMP := $(VENV)/.installed-$(shell cat requirements.txt requirements-dev.txt | sha1sum | cut -c1-12)

.PHONY: run test lint format bench reset-demo clean

$(STAMP): requirements.txt requirements-dev.txt
	@command -v $(PYTHON) >/dev/null || { echo "$(PYTHON) is required"; exit 1; }
	@test -x $(VENV)/bin/python || $(PYTHON) -m venv $(VENV)
	$(VENV)/bin/pip install --quiet --upgrade pip
	$(VENV)/bin/pip install --quiet -r requirements-dev.txt
	@rm -f $(VENV)/.installed-*
	@touch $@

run: $(STAMP)
	scripts/run.sh

test: $(STAMP)
	scripts/test.sh

lint: $(STAMP)
	scripts/lint.sh

format: $(STAMP)
	$(VENV)/bin/ruff check --fix .
	$(VENV)/bin/ruff format .

bench: $(STAMP)
	scripts/bench.sh

# Forget the demo's data so that the next `make run` creates it afresh: both databases (a
# cluster kept outside the checkout too), Redis, the simulated devices' credentials, the beat
# schedule, the audit checkpoints of the old chains (they would name entries that are
# gone) and the stored firmware. The virtualenv stays. It stops nothing: end `make run` (Ctrl-C) first.
reset-demo:
	@if [ -e var/pg/postmaster.pid ] || [ -e var/redis/redis.pid ]; then echo "make run is still running (PostgreSQL or Redis): stop it (Ctrl-C) first."; exit 1; fi
	bash -c 'source scripts/services.sh && remove_postgres var/pg'
	rm -rf var/redis var/simulator var/celerybeat-schedule var/celerybeat-schedule.* var/audit-checkpoints var/firmware var/demo-firmware-key.pem

# Clusters kept outside the checkout (one in a private directory, run as root; see
# pg_relocate in scripts/services.sh) are stopped and removed too.
clean:
	bash -c 'source scripts/services.sh && remove_relocated_postgres'
	rm -rf $(VENV) var
