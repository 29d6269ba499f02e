# The two commands a new user needs:
#   make demo   set up, create a demo registry on SQLite and serve it
#   make test   install what the tests need and run them on SQLite and PostgreSQL
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
PORT ?= 8000

.PHONY: demo install install-test test test-sqlite test-postgres lint clean

$(BIN)/python:
	$(PYTHON) -c 'import sys; sys.exit("registry3d needs Python 3.11 or newer") if sys.version_info < (3, 11) else None'
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip

install: $(BIN)/python
	$(BIN)/pip install --quiet -r requirements.lock
	$(BIN)/pip install --quiet --no-deps -e .

install-test: install
	$(BIN)/pip install --quiet -r requirements-test.lock

demo: install
	$(BIN)/registry3d init --demo
	$(BIN)/registry3d serve --port $(PORT)

test: install-test
	scripts/test.sh

lint: install-test
	$(BIN)/ruff check registry3d tests bench

clean:
	rm -rf $(VENV) var .pytest_cache
