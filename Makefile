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

.PHONY: tools lock run demo test test-unit test-integration test-e2e test-browser lint format migrate topology station secrets clean

# The runtime dependencies first, from the lock file with their hashes (as the image installs
# them), then the project editable with its development tools.
$(VENV)/installed: pyproject.toml deploy/requirements.lock
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade "pip>=24"
	$(PY) -m pip install --quiet --require-hashes --no-deps -r deploy/requirements.lock
	$(PY) -m pip install --quiet -e '.[dev]'
	touch $@

# The validators integrators run (tests/validators): npm's from package-lock.json, checkov in a
# virtualenv of its own (it pins a `packaging` older than pytest's), from pyproject.toml's
# `checkov` extra.
tools: node_modules/.installed examples/node-subscriber/node_modules/.installed $(VENV)/checkov/installed

node_modules/.installed: package.json package-lock.json
	npm ci --ignore-scripts --no-audit --no-fund --prefer-offline --loglevel=error
	touch $@

# The Node.js example subscriber's own dependencies (tests/integration/test_node_subscriber.py).
examples/node-subscriber/node_modules/.installed: examples/node-subscriber/package.json examples/node-subscriber/package-lock.json
	cd examples/node-subscriber && npm ci --ignore-scripts --no-audit --no-fund --prefer-offline --loglevel=error
	touch $@

$(VENV)/checkov/installed: pyproject.toml
	test -x $(VENV)/checkov/bin/python || $(PYTHON) -m venv $(VENV)/checkov
	$(VENV)/checkov/bin/python -m pip install --quiet $$($(PYTHON) -c "import tomllib; print(' '.join(tomllib.load(open('pyproject.toml', 'rb'))['project']['optional-dependencies']['checkov']))")
	touch $@

# The image's dependencies, every one with its hashes, from pyproject.toml's (deploy/Dockerfile).
lock: $(VENV)/installed
	$(VENV)/bin/pip-compile --quiet --generate-hashes --strip-extras --allow-unsafe \
	    --no-emit-index-url --no-emit-find-links -o deploy/requirements.lock pyproject.toml

run: $(VENV)/installed
	$(PY) -m deploy.local run $(SERVICES)

demo: $(VENV)/installed
	$(PY) -m deploy.demo

test: $(VENV)/installed lint tools
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
