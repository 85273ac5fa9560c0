# Two commands for a fresh machine: `make demo` and `make test`.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin

.PHONY: demo test lint typecheck pytest soak bench bench-quick clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip

$(VENV)/.dev-installed: pyproject.toml | $(BIN)/python
	$(BIN)/pip install --quiet -e '.[dev]'
	touch $@

$(VENV)/.demo-installed: pyproject.toml | $(BIN)/python
	$(BIN)/pip install --quiet -e '.[cli,tts,device,plot]'
	touch $@

demo: $(VENV)/.demo-installed
	$(BIN)/agent-playout demo --report demo.json --plot demo.png

test: lint typecheck pytest

lint: $(VENV)/.dev-installed
	$(BIN)/ruff check src tests bench
	$(BIN)/ruff format --check src tests bench

typecheck: $(VENV)/.dev-installed
	$(BIN)/mypy

pytest: $(VENV)/.dev-installed
	$(BIN)/python -m pytest -q

soak: $(VENV)/.dev-installed
	SOAK_ITEMS=10000 $(BIN)/python -m pytest -q -s tests/test_soak.py

bench: $(VENV)/.dev-installed
	$(BIN)/python -m bench.run

bench-quick: $(VENV)/.dev-installed
	$(BIN)/python -m bench.run --quick

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache demo.wav demo.json demo.png \
		agent-playout.wav
