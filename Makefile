# cot: `make run` starts everything with demo data; `make test` runs every check.
PYTHON ?= python3.11
VENV := .venv
STAMP := $(VENV)/.installed-$(shell cat requirements.txt requirements-dev.txt | sha1sum | cut -c1-12)

.PHONY: run test lint format bench clean

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

clean:
	rm -rf $(VENV) var
