# Two commands for a fresh machine: `make demo` and `make test`; `make playground` serves the page.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin

.PHONY: demo playground test lint typecheck pytest test-livekit-floor test-livekit-agents \
	test-livekit-agents-floor soak bench bench-quick clean

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

test: lint typecheck pytest test-livekit-agents

lint: $(VENV)/.dev-installed
	$(BIN)/ruff check src tests bench examples
	$(BIN)/ruff format --check src tests bench examples

typecheck: $(VENV)/.dev-installed
	$(BIN)/mypy

pytest: $(VENV)/.dev-installed
	$(BIN)/python -m pytest -q

# The floor: LiveKit Agents 0.12's last release with the oldest rtc this package supports, and
# the oldest websockets, twilio and aiohttp the [phone], [realtime] and [playground] extras
# allow, installed in one resolve in a second venv, where FLOOR_TESTS (the LiveKit tests, the
# phone tests, the realtime connection, simulator and phone bridge, and the playground's
# server) run again. The target
# keeps its first name, test-livekit-floor, which CI calls.
FLOOR_VENV := .venv-lk012
FLOOR_INSTALL := -e '.[dev]' 'livekit-agents[codecs]==0.12.21' 'livekit==1.1.10' \
	'websockets==15.0' 'twilio==9.0.2' 'aiohttp==3.10.11'
FLOOR_TESTS := tests/test_livekit_sink.py tests/test_ticks.py tests/test_livekit_transcript.py \
	tests/test_multimodal_agent.py tests/test_frames.py tests/test_playout.py \
	tests/test_livekit_scheduler.py tests/test_sinks_base.py tests/test_phone_*.py \
	tests/test_bridge_connection.py tests/test_bridge_simulator.py tests/test_bridge_phone.py \
	tests/test_playground_server.py tests/test_playground_realtime.py

$(FLOOR_VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(FLOOR_VENV)
	$(FLOOR_VENV)/bin/pip install --quiet --upgrade pip
	$(FLOOR_VENV)/bin/pip install --quiet $(FLOOR_INSTALL)
	touch $@

test-livekit-floor: $(FLOOR_VENV)/.installed
	$(FLOOR_VENV)/bin/pip check
	$(FLOOR_VENV)/bin/python -m pytest -q $(FLOOR_TESTS)

# LiveKit Agents 1.x pins rtc exactly (1.8.9: livekit==1.1.21), so it cannot share the dev venv
# (rtc 1.2.1): the [livekit-agents] extra is installed in a venv of its own, where mypy checks
# the integration against the real package and AGENTS_TESTS run (the LiveKit sink's tests
# again, on that rtc). In the dev venv the integration's tests skip, naming this target.
AGENTS_VENV := .venv-agents
AGENTS_TESTS := tests/test_livekit_agents_*.py tests/test_livekit_sink.py \
	tests/test_examples.py::test_the_livekit_agents_example_runs
AGENTS_FLOOR_VENV := .venv-agents-floor
# 1.6.4, the oldest the rtc range allows, imports httpx without requiring it
AGENTS_FLOOR_INSTALL := -e '.[dev]' 'livekit-agents==1.6.4' 'httpx'

$(AGENTS_VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(AGENTS_VENV)
	$(AGENTS_VENV)/bin/pip install --quiet --upgrade pip
	$(AGENTS_VENV)/bin/pip install --quiet -e '.[dev,livekit-agents]'
	touch $@

test-livekit-agents: $(AGENTS_VENV)/.installed
	$(AGENTS_VENV)/bin/pip check
	$(AGENTS_VENV)/bin/mypy src/agent_playout
	$(AGENTS_VENV)/bin/python -m pytest -q $(AGENTS_TESTS)

$(AGENTS_FLOOR_VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(AGENTS_FLOOR_VENV)
	$(AGENTS_FLOOR_VENV)/bin/pip install --quiet --upgrade pip
	$(AGENTS_FLOOR_VENV)/bin/pip install --quiet $(AGENTS_FLOOR_INSTALL)
	touch $@

# the oldest: the same tests (1.6.4 has no playback_progressed: those that check runs skip)
test-livekit-agents-floor: $(AGENTS_FLOOR_VENV)/.installed
	$(AGENTS_FLOOR_VENV)/bin/pip check
	$(AGENTS_FLOOR_VENV)/bin/python -m pytest -q tests/test_livekit_agents_*.py

soak: $(VENV)/.dev-installed
	SOAK_ITEMS=10000 $(BIN)/python -m pytest -q -s tests/test_soak.py

bench: $(VENV)/.dev-installed
	$(BIN)/python -m bench.run

bench-quick: $(VENV)/.dev-installed
	$(BIN)/python -m bench.run --quick

clean:
	rm -rf $(VENV) $(FLOOR_VENV) $(AGENTS_VENV) $(AGENTS_FLOOR_VENV) .pytest_cache .mypy_cache \
		.ruff_cache demo.wav demo.json demo.png \
		agent-playout.wav
