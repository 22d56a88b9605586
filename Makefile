# Two commands do all set-up on a fresh machine:
#   make demo   - the end-to-end demo on the embedded store (./.heron: SQLite + a local folder)
#   make test   - lint and the whole test suite
VENV ?= .venv
PY := $(VENV)/bin/python
PYTHON ?= python3

.PHONY: demo test lint check clean

$(VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -e '.[dev]'
	touch $@

demo: $(VENV)/.installed
	$(VENV)/bin/heron demo

lint: $(VENV)/.installed
	$(PY) -m ruff check src tests bench
	$(PY) -m ruff format --check src tests

test: lint
	$(PY) -m pytest -q

check: test

clean:
	rm -rf $(VENV) .heron .pytest_cache
