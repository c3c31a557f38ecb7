# Every target bootstraps .venv on a fresh clone: python3 -m venv, uv from PyPI, uv sync.
SHELL := /bin/bash
VENV := .venv
PY := $(VENV)/bin/python
UV := $(VENV)/bin/uv
UV_VERSION := 0.13.8
export UV_PROJECT_ENVIRONMENT := $(abspath $(VENV))
export UV_PYTHON_DOWNLOADS := never
export UV_PYTHON := $(abspath $(PY))
PYTEST_WORKERS ?= 2
RESILIENCE_SIZE ?= full
RESILIENCE_RUNS ?= 1

.PHONY: up test test-resilience test-unit lint fmt bench docs check-docs clean-data help

help:
	@echo "make up      run the whole system (embedded NATS + PostgreSQL) on http://127.0.0.1:8000"
	@echo "make test    run the test suite (all but the resilience scenarios)"
	@echo "make test-resilience  the resilience scenarios at full size (RESILIENCE_SIZE, RESILIENCE_RUNS)"
	@echo "make lint    ruff and mypy"
	@echo "make docs    regenerate the AsyncAPI documents in docs/asyncapi/"
	@echo "make bench   run the benchmark suite"

$(VENV)/.synced: pyproject.toml uv.lock $(wildcard libs/*/pyproject.toml services/*/pyproject.toml)
	@test -x $(PY) || python3 -m venv $(VENV)
	@test -x $(UV) || $(VENV)/bin/python -m pip install -q --disable-pip-version-check "uv==$(UV_VERSION)"
	@$(UV) sync --locked --all-packages --quiet
	@touch $@

up: $(VENV)/.synced
	@$(VENV)/bin/cortex up

test: $(VENV)/.synced
	$(VENV)/bin/pytest -n $(PYTEST_WORKERS) --dist loadgroup -m "not resilience"

# the resilience scenarios at the issue's sizes, RESILIENCE_RUNS times in a row (docs/reliability.md)
test-resilience: $(VENV)/.synced
	@for run in $$(seq 1 $(RESILIENCE_RUNS)); do \
	  echo "resilience run $$run of $(RESILIENCE_RUNS) ($(RESILIENCE_SIZE))"; \
	  CORTEX_RESILIENCE_SIZE=$(RESILIENCE_SIZE) $(VENV)/bin/pytest -m resilience tests/e2e/resilience || exit 1; \
	done

lint: $(VENV)/.synced
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	$(VENV)/bin/mypy libs/contracts/src libs/runtime/src libs/devstack/src services/gateway/src services/identity/src services/booking/src services/calendars/src services/billing/src

fmt: $(VENV)/.synced
	$(VENV)/bin/ruff format .
	$(VENV)/bin/ruff check --fix .

docs: $(VENV)/.synced
	$(PY) -m cortex_dev.asyncapi --write docs/asyncapi

bench: $(VENV)/.synced
	$(PY) -m bench

clean-data:
	rm -rf .cortex
