# Two commands set everything up: `make run` and `make test`.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed

.PHONY: run test lint bench clean

# Every install is pinned by constraints.txt (the build's setuptools too, through
# PIP_CONSTRAINT): a new release upstream never changes what an unchanged tree gets.
PIN    := PIP_CONSTRAINT=$(CURDIR)/constraints.txt

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(PIN) $(BIN)/python -m pip install --quiet --upgrade pip

$(STAMP): pyproject.toml constraints.txt | $(BIN)/python
	$(PIN) $(BIN)/python -m pip install --quiet -e '.[test]'
	touch $(STAMP)

# The watch service and the web console in one process; its address is said on stderr.
run: $(STAMP)
	$(BIN)/datacenter --config datacenter.toml serve --web

lint: $(STAMP)
	$(BIN)/ruff check datacenter tests benchmarks
	$(BIN)/mypy

test: lint
	$(BIN)/python -m pytest -q

bench: $(STAMP)
	$(BIN)/python -m benchmarks

clean:
	rm -rf $(VENV) build *.egg-info
