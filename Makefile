# One uniform interface: every target is an alias for an invoke task or nox session.
# The first use creates .venv (Python >= 3.11) and installs parity into it.
PY     ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
INV    := $(BIN)/inv
NOX    := $(BIN)/nox
# MODE, PHASE and PROFILE are passed to inv only when you set them: the lifecycle
# targets then default to what `make up` recorded (.parity/running.json), else
# compose / 1 / default (docs/runbook-compose.md, "The running selection").
SEL     = $(if $(MODE),--mode $(MODE)) $(if $(PHASE),--phase $(PHASE)) $(if $(PROFILE),--profile $(PROFILE))
# SHIM=1 runs the lifecycle through decision 0010's docker shim, for machines whose
# Docker cannot run --privileged (kind's nodes need it; inv doctor says when). It is
# never applied without SHIM=1 (or the same directory first on your PATH).
RUN    := $(if $(SHIM),PATH="$(CURDIR)/testbin/docker-shim:$$PATH" )

.DEFAULT_GOAL := help
.PHONY: help venv bytecode engine test test-deps verify render lint diff config images doctor \
	up status validate browser-deps down reset compose-up compose-status compose-validate compose-down \
	compose-reset compose-doctor down-volumes kind-parity-up kind-parity-status kind-parity-validate \
	kind-parity-down kind-parity-down-volumes kind-parity-reset kind-parity-doctor \
	kind-parity-images compose-down-volumes

help:  ## list the targets
	@grep -E '^[a-z][a-zA-Z0-9_ -]+:.*##' $(MAKEFILE_LIST) | sed 's/:.*##/\t/' | expand -t 24

$(VENV)/.installed: pyproject.toml
	$(PY) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q -e '.[dev]'
	@touch $@

# pip compiles bytecode for a normal install but not for an editable one; without it,
# and with PYTHONDONTWRITEBYTECODE=1 set (as on CI machines), every inv compiles
# parity from source: 40-70 ms of each command (docs/performance.md). Python checks
# each .pyc against its source's mtime: an edited module is compiled again in memory.
bytecode: $(VENV)/.installed  ## compile parity's modules and tasks.py to bytecode (make venv does it; fast when nothing changed)
	@$(BIN)/python -m compileall -q -j 0 src tasks.py >/dev/null

venv: $(VENV)/.installed bytecode  ## create .venv and install parity with its test tools

engine:  ## make sure a Docker engine and the Compose v2 plugin run (installs them on Debian 12)
	@docker info >/dev/null 2>&1 && docker compose version >/dev/null 2>&1 || bash .ci/install-docker.sh

# REQUIRE_ALL_TESTS=1 (not PARITY_*: parity refuses PARITY_ variables it does not know): a test that would skip for want of something make test should
# have installed fails instead, naming it (tests/conftest.py); -rs lists every skip.
test: venv engine browser-deps test-deps  ## the test suite (unit, golden, validators, control plane, both lanes end to end with a real browser)
	REQUIRE_ALL_TESTS=1 $(BIN)/pytest -q -rs
	REQUIRE_ALL_TESTS=1 $(NOX) -s verify
	REQUIRE_ALL_TESTS=1 $(NOX) -s k8s
	REQUIRE_ALL_TESTS=1 $(NOX) -s e2e_compose
	REQUIRE_ALL_TESTS=1 $(NOX) -s e2e_kind

test-deps:  ## the Debian packages the tests run real servers from (installs them on Debian 12 as root, else names them)
	@bash .ci/install-test-deps.sh

verify: venv  ## offline parity lane: render, schema-check, lint and diff all six combinations of every image profile
	$(NOX) -s verify

render: venv  ## render MODE/PHASE into .parity/build/ (make render MODE=kind PHASE=2)
	$(INV) render $(SEL)

lint: venv  ## cross-reference lint of a render
	$(INV) lint $(SEL)

diff: venv  ## compose-vs-kind parity diff for PHASE
	$(INV) diff --from compose --to kind $(if $(PHASE),--phase $(PHASE))

config: venv  ## print the merged model of MODE/PHASE
	$(INV) config $(SEL)

images: venv  ## build the images of MODE and PROFILE (offline: without a registry; MODE=kind adds the node image and edge)
	$(INV) images $(if $(MODE),--mode $(MODE)) --phase 3 $(if $(PROFILE),--profile $(PROFILE))

# --- lifecycle: MODE=compose or kind; PHASE=1..3; PROFILE=default|offline; SHIM=1;
# each unset value is the running one (recorded by up), else compose / 1 / default
up: venv engine  ## create/update the environment and wait until ready (make up PHASE=2)
	$(RUN)$(INV) up $(SEL)

doctor: venv  ## every prerequisite of the lane at once; changes nothing (exit 3 if one is missing)
	$(RUN)$(INV) doctor $(SEL)

status: venv  ## one row per service with state, health, reason, endpoint
	$(RUN)$(INV) status $(SEL)

validate: venv $(if $(BROWSER),browser-deps)  ## the live checks (readiness, smoke through the edge, identity, contract); BROWSER=1 adds a real browser login
	$(RUN)$(INV) validate $(strip $(SEL) $(if $(BROWSER),--browser))

browser-deps:  ## Chromium and certutil from Debian for BROWSER=1 (installs them on Debian 12 when missing)
	@command -v chromium >/dev/null 2>&1 && command -v certutil >/dev/null 2>&1 || bash .ci/install-browser.sh

down: venv  ## remove what parity created, nothing else; keeps the data (VOLUMES=1 deletes it too)
	$(RUN)$(INV) down $(strip $(SEL) $(if $(VOLUMES),--volumes))

down-volumes: venv  ## down, and delete the data volumes too (make down VOLUMES=1)
	$(MAKE) --no-print-directory down VOLUMES=1

reset: venv  ## destroy and recreate from zero (deletes the data)
	$(RUN)$(INV) reset $(SEL)

compose-up compose-status compose-validate compose-down compose-down-volumes compose-reset compose-doctor: venv  ## compose lane aliases
	$(MAKE) --no-print-directory $(subst compose-,,$@) MODE=compose

kind-parity-up kind-parity-status kind-parity-validate kind-parity-down kind-parity-down-volumes kind-parity-reset kind-parity-doctor kind-parity-images: venv  ## kind lane aliases
	$(MAKE) --no-print-directory $(subst kind-parity-,,$@) MODE=kind
