# One uniform interface: every target is an alias for an invoke task or nox session.
# The first use creates .venv (Python >= 3.11) and installs parity into it.
PY     ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
INV    := $(BIN)/inv
NOX    := $(BIN)/nox
MODE   ?= compose
PHASE  ?= 1

.DEFAULT_GOAL := help
.PHONY: help venv engine test validate render lint diff config

help:  ## list the targets
	@grep -E '^[a-z][a-zA-Z0-9_-]+:.*##' $(MAKEFILE_LIST) | sed 's/:.*##/\t/' | expand -t 24

$(VENV)/.installed: pyproject.toml
	$(PY) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q -e '.[dev]'
	@touch $@

venv: $(VENV)/.installed  ## create .venv and install parity with its test tools

engine:  ## make sure a Docker engine and the Compose v2 plugin run (installs them on Debian 12)
	@docker info >/dev/null 2>&1 && docker compose version >/dev/null 2>&1 || bash .ci/install-docker.sh

test: venv engine  ## the test suite (unit, golden, external validators, compose end to end)
	$(BIN)/pytest -q
	$(NOX) -s validate

validate: venv  ## offline parity lane: render, validate, lint and diff all six combinations
	$(NOX) -s validate

render: venv  ## render MODE/PHASE into .parity/build/ (make render MODE=kind PHASE=2)
	$(INV) render --mode $(MODE) --phase $(PHASE)

lint: venv  ## cross-reference lint of a render
	$(INV) lint --mode $(MODE) --phase $(PHASE)

diff: venv  ## compose-vs-kind parity diff for PHASE
	$(INV) diff --from compose --to kind --phase $(PHASE)

config: venv  ## print the merged model of MODE/PHASE
	$(INV) config --mode $(MODE) --phase $(PHASE)
