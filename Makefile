# Two commands for a fresh machine: `make demo` and `make test`; `make playground` serves the page.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin

.PHONY: demo playground test lint typecheck pytest test-livekit-floor soak bench bench-quick clean

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
	$(BIN)/agent-playout demo --force --report demo.json --plot demo.png

$(VENV)/.playground-installed: pyproject.toml | $(BIN)/python
	$(BIN)/pip install --quiet -e '.[playground]'
	touch $@

# PORT=8080 by default; open the URL it prints in a browser
playground: $(VENV)/.playground-installed
	$(BIN)/agent-playout playground --port $(or $(PORT),8080)

test: lint typecheck pytest

lint: $(VENV)/.dev-installed
	$(BIN)/ruff check src tests bench examples
	$(BIN)/ruff format --check src tests bench examples

typecheck: $(VENV)/.dev-installed
	$(BIN)/mypy

pytest: $(VENV)/.dev-installed
	$(BIN)/python -m pytest -q

# The floor: LiveKit Agents 0.12's last release with the oldest rtc this package supports, and
# the oldest websockets and twilio the [phone] and [realtime] extras allow, installed in one
# resolve in a second venv, where FLOOR_TESTS (the LiveKit tests, the phone tests and the
# realtime connection, simulator and phone bridge) run again. The target
# keeps its first name, test-livekit-floor, which CI calls.
FLOOR_VENV := .venv-lk012
FLOOR_INSTALL := -e '.[dev]' 'livekit-agents[codecs]==0.12.21' 'livekit==1.1.10' \
	'websockets==15.0' 'twilio==9.0.2'
FLOOR_TESTS := tests/test_livekit_sink.py tests/test_ticks.py tests/test_livekit_transcript.py \
	tests/test_multimodal_agent.py tests/test_frames.py tests/test_playout.py \
	tests/test_livekit_scheduler.py tests/test_sinks_base.py tests/test_phone_*.py \
	tests/test_bridge_connection.py tests/test_bridge_simulator.py tests/test_bridge_phone.py

$(FLOOR_VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(FLOOR_VENV)
	$(FLOOR_VENV)/bin/pip install --quiet --upgrade pip
	$(FLOOR_VENV)/bin/pip install --quiet $(FLOOR_INSTALL)
	touch $@

test-livekit-floor: $(FLOOR_VENV)/.installed
	$(FLOOR_VENV)/bin/pip check
	$(FLOOR_VENV)/bin/python -m pytest -q $(FLOOR_TESTS)

soak: $(VENV)/.dev-installed
	SOAK_ITEMS=10000 $(BIN)/python -m pytest -q -s tests/test_soak.py

bench: $(VENV)/.dev-installed
	$(BIN)/python -m bench.run

bench-quick: $(VENV)/.dev-installed
	$(BIN)/python -m bench.run --quick

clean:
	rm -rf $(VENV) $(FLOOR_VENV) .pytest_cache .mypy_cache .ruff_cache demo.wav demo.json demo.png \
		agent-playout.wav
