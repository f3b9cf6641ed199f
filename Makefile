# The two commands: `make run` runs the platform, `make test` runs the whole suite.
# Each prepares what it needs: virtualenv, dependencies, broker, databases, migrations.

PYTHON ?= python3.11
VENV ?= .venv
PY := $(VENV)/bin/python
SERVICES ?= accounts consulting matching notify activities insights portal
PYTEST_ARGS ?=
# What make runs is development: development keys, demo accounts, printed passwords. Compose and
# Kubernetes run production, the default of a process started without it (chassis/settings.py).
PLATFORM_ENV ?= development
export PLATFORM_ENV

.PHONY: run demo test test-unit test-integration test-e2e test-browser lint format migrate topology station secrets clean

$(VENV)/installed: pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade "pip>=24"
	$(PY) -m pip install --quiet -e '.[dev]'
	touch $@

run: $(VENV)/installed
	$(PY) -m deploy.local run $(SERVICES)

demo: $(VENV)/installed
	$(PY) -m deploy.demo

test: $(VENV)/installed lint
	$(PY) -m deploy.local prepare --for-tests
	$(PY) -m pytest $(PYTEST_ARGS)

test-unit: $(VENV)/installed
	$(PY) -m pytest tests/unit $(PYTEST_ARGS)

test-integration: $(VENV)/installed
	$(PY) -m deploy.local prepare --for-tests
	$(PY) -m pytest tests/integration $(PYTEST_ARGS)

test-e2e: $(VENV)/installed
	$(PY) -m deploy.local prepare --for-tests
	$(PY) -m pytest tests/e2e $(PYTEST_ARGS)

test-browser: $(VENV)/installed
	$(PY) -m deploy.local prepare --for-tests
	PORTAL_BROWSER_TESTS=1 $(PY) -m pytest tests/browser --suppress-nameko-eventlet-notification $(PYTEST_ARGS)

lint: $(VENV)/installed
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .

format: $(VENV)/installed
	$(VENV)/bin/ruff check --fix .
	$(VENV)/bin/ruff format .

migrate: $(VENV)/installed
	$(PY) -m deploy.local prepare $(SERVICES)

# The operator's command: `make station ARGS="import returnees file.xlsx"` (docs/station.md).
station: $(VENV)/installed
	$(VENV)/bin/station $(ARGS)

# The secrets docker compose runs with, generated into deploy/secrets/ (git-ignored).
secrets: $(VENV)/installed
	PLATFORM_ENV=production $(PY) -m deploy.secrets compose

clean:
	rm -rf $(VENV) .ruff_cache
