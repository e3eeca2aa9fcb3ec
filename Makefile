# webrl: `make run` (the dashboard, workers, the built-in world and the demo run) and `make test`.
SHELL := /bin/bash
PYTHON ?= python3.11
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed-$(shell sha1sum pyproject.toml | cut -c1-12)

.PHONY: setup run test test-slow test-faults lint format clean-venv gpu-check

# Development mode is explicit: the settings default DEBUG off (deployments).
DEV := DEBUG=$${DEBUG:-1}

setup: $(STAMP) chromium
	@$(PY) scripts/ensure_db.py
	@$(DEV) $(PY) manage.py migrate --noinput -v 0
	@echo "setup: ready"

$(STAMP): pyproject.toml
	@command -v $(PYTHON) >/dev/null || { echo "setup: $(PYTHON) not found (webrl needs Python 3.11)"; exit 1; }
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	@$(PY) -m pip install -q --upgrade pip
	@# The CPU wheel of torch first: a looser requirement would pull gigabytes of CUDA packages.
	@$(PY) -m pip install -q torch==2.13.0
	@$(PY) -m pip install -q -e ".[test]"
	@rm -f $(VENV)/.installed-*
	@touch $(STAMP)

chromium:
	@if [ ! -x "$${CHROMIUM_PATH:-/usr/bin/chromium}" ]; then \
	  echo "setup: installing Debian's chromium"; \
	  if [ "$$(id -u)" = 0 ]; then SUDO=""; else SUDO="sudo"; fi; \
	  $$SUDO apt-get update -qq && $$SUDO apt-get install -y -qq chromium fonts-liberation >/dev/null; \
	fi

run: setup
	@$(DEV) $(PY) scripts/devserver.py

# The fault-injection suite runs after the rest (about 20 of the 30 minutes on 2 cores).
test: setup
	@$(DEV) REDIS_URL=$${TEST_REDIS_URL:-redis://127.0.0.1:6379/15} $(PY) -m pytest
	@$(DEV) REDIS_URL=$${TEST_REDIS_URL:-redis://127.0.0.1:6379/15} $(PY) -m pytest -m faults

test-slow: setup
	@$(DEV) REDIS_URL=$${TEST_REDIS_URL:-redis://127.0.0.1:6379/15} $(PY) -m pytest -m slow

test-faults: setup
	@$(DEV) REDIS_URL=$${TEST_REDIS_URL:-redis://127.0.0.1:6379/15} $(PY) -m pytest -m faults

# The prepared GPU check (scripts/gpu_check.sh); needs no set-up: GPU machines run it bare.
gpu-check:
	@bash scripts/gpu_check.sh --out $${OUT:-var/gpu-check} $(ARGS)

lint:
	@$(VENV)/bin/ruff check . && $(VENV)/bin/ruff format --check .

format:
	@$(VENV)/bin/ruff format . && $(VENV)/bin/ruff check --fix .
