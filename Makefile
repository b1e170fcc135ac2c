# The two commands of the README: `make run` (the bot) and `make test` (the whole suite).
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
INSTALLED := $(VENV)/.installed

.PHONY: run test lint typecheck pytest bench clean constraints

$(INSTALLED): pyproject.toml constraints.txt
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -c constraints.txt -e ".[test]"
	touch $(INSTALLED)

run: $(INSTALLED)
	$(BIN)/govbot run

test: lint typecheck pytest

lint: $(INSTALLED)
	$(BIN)/ruff check .

typecheck: $(INSTALLED)
	$(BIN)/mypy

pytest: $(INSTALLED)
	$(BIN)/pytest

bench: $(INSTALLED)
	$(BIN)/python benchmarks/bench_matcher.py

# Tools' caches and the virtual environment only: var/ holds the database that `make run` made.
clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache

# The newest releases pyproject.toml allows, resolved in a scratch environment and pinned in constraints.txt.
constraints:
	rm -rf .venv-constraints
	$(PYTHON) -m venv .venv-constraints
	.venv-constraints/bin/pip install --quiet --upgrade pip
	.venv-constraints/bin/pip install --quiet -e ".[test]"
	{ sed -n '1,2p' constraints.txt; .venv-constraints/bin/pip freeze --exclude-editable | grep -v '^#'; } > constraints.new
	mv constraints.new constraints.txt
	rm -rf .venv-constraints
