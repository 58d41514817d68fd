#!/usr/bin/env bash
# `make lint`, and the first half of `make test`: ruff (lint and format check) and mypy.
source "$(dirname "$0")/services.sh"
cd "$ROOT"

log "ruff check"
.venv/bin/ruff check .
log "ruff format --check"
.venv/bin/ruff format --check .
log "mypy"
.venv/bin/mypy .
log "lint-imports (layer contracts in pyproject.toml)"
.venv/bin/lint-imports --no-cache --no-logo
