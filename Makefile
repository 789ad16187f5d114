# Two commands for a newcomer: `make run` serves the app, `make test` proves it.
# Both create .venv, install what requirements*.txt name (skipped when those
# files have not changed since the last install), and prepare the packed
# weights once into ASSISTANT_HOME. --no-compile: Python compiles a module to
# bytecode when it is first imported; compiling every installed file up front
# made a fresh install 2.5x slower (316 s against 128 s, measured here).

# Bytecode is cached as modules are first imported, even where the environment
# says not to (PYTHONDONTWRITEBYTECODE, set on these machines): without the cache
# every process compiles transformers, gradio and torch's Python again. Measured
# 2026-12-04: importing them took 18 s against 10.5 s, in every test process and
# in the app's first request to each model family.
unexport PYTHONDONTWRITEBYTECODE

PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
REQS := requirements.txt requirements-packs.txt requirements-dev.txt
# The stamp's name carries a hash of the requirement files, so an edit to
# any of them reinstalls and an unchanged set skips pip entirely.
STAMP := $(VENV)/.installed-$(shell cat $(REQS) | sha256sum | cut -c1-16)

.PHONY: install prepare run test lint clean tts

$(STAMP):
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --progress-bar off --no-compile -r requirements.txt -r requirements-dev.txt
	$(BIN)/pip install --progress-bar off --no-compile --no-deps -r requirements-packs.txt
	@rm -f $(VENV)/.installed-*
	@touch $@

install: $(STAMP)

prepare: install
	$(BIN)/python -m assistant prepare

run: prepare
	$(BIN)/python app.py

lint: install
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

test: prepare lint
	$(BIN)/python -m pytest

# Optional spoken replies (Piper, GPL-3.0-or-later): never part of install.
tts: install
	$(BIN)/pip install --progress-bar off -r requirements-tts.txt
	$(BIN)/pip install --progress-bar off --no-deps -r requirements-tts-packs.txt

clean:
	rm -rf $(VENV)
