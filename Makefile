# Two commands do all the set-up on a fresh Debian 12 machine with Python 3.11:
#   make run    creates .venv, installs vigil and starts it on the built-in lab network
#   make test   installs the dev extras and runs the whole suite
PYTHON ?= python3
VENV   ?= .venv
BIN     = $(VENV)/bin
ARGS   ?=

.PHONY: run test venv dev lint clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip

venv: $(BIN)/python
	$(BIN)/pip install -q -e '.[postgres]'

dev: $(BIN)/python
	$(BIN)/pip install -q -e '.[dev,postgres]'

run: venv
	$(BIN)/vigil run $(ARGS)

test: dev
	$(BIN)/python -m pytest -q -ra $(ARGS)

lint: dev
	$(BIN)/ruff check .

clean:
	rm -rf $(VENV) build *.egg-info .pytest_cache
