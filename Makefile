# tierwise: two commands on a fresh machine.
#   make run   -> the proxy on 127.0.0.1:8787 (offline upstream without ANTHROPIC_API_KEY)
#   make test  -> installs what the tests need and runs them
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
ARGS ?=

.PHONY: run test bench clean check-python clients

run: $(VENV)/.installed
	$(VENV)/bin/tierwise serve $(ARGS)

test: $(VENV)/.installed-test clients
	$(PY) -m pytest -q $(ARGS)

bench: $(VENV)/.installed-test
	$(PY) bench/proxy_overhead.py

check-python:
	@$(PYTHON) -c 'import sys; sys.exit(0 if sys.version_info >= (3, 11) else "tierwise needs Python 3.11 or newer (found %s)" % sys.version.split()[0])'

$(VENV)/bin/python: | check-python
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip

$(VENV)/.installed: pyproject.toml | $(VENV)/bin/python
	$(PY) -m pip install -q -e .
	@touch $@

$(VENV)/.installed-test: pyproject.toml | $(VENV)/bin/python
	$(PY) -m pip install -q -e '.[test]'
	@touch $(VENV)/.installed $@

# The client matrix (tests/clients/): real client libraries from PyPI and npm, each in an environment
# rebuilt only when its pinned file changes. Without network or npm this warns and the tests skip;
# under CI=true it fails.
CLIENT_VENVS ?= .venv-clients
NODE_CLIENTS := tests/clients/node
SOFT = || { echo "client matrix: $@ could not be installed (the client tests will skip; under CI=true they fail)"; [ -z "$$CI" ]; }

clients: $(CLIENT_VENVS)/main/.installed $(CLIENT_VENVS)/llm/.installed $(NODE_CLIENTS)/node_modules/.installed

$(CLIENT_VENVS)/%/.installed: tests/clients/requirements-%.txt | check-python
	@rm -rf $(CLIENT_VENVS)/$*
	( $(PYTHON) -m venv $(CLIENT_VENVS)/$* && $(CLIENT_VENVS)/$*/bin/python -m pip install -q --disable-pip-version-check -r $< && touch $@ ) $(SOFT)

$(NODE_CLIENTS)/node_modules/.installed: $(NODE_CLIENTS)/package.json $(NODE_CLIENTS)/package-lock.json
	( command -v npm >/dev/null || { echo "npm not found"; exit 1; }; cd $(NODE_CLIENTS) && npm ci --no-audit --no-fund --loglevel=error && touch node_modules/.installed ) $(SOFT)

clean:
	rm -rf $(VENV) $(CLIENT_VENVS) $(NODE_CLIENTS)/node_modules build dist *.egg-info
