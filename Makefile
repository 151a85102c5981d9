# Each target bootstraps .venv when needed. The CPU build of torch is installed first:
# a bare `torch` requirement resolved on its own would pull a CUDA build of several GB.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed

.PHONY: app test check bench venv clean

venv: $(STAMP)

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --disable-pip-version-check torch==2.13.0
	$(BIN)/pip install -q --disable-pip-version-check -e '.[test,bench]'
	touch $@

# The studio's options: make app PORT=8502 HOST=0.0.0.0 WORKERS=2 DATA=/path/to/jobs
PORT    ?= 8501
HOST    ?= 127.0.0.1
WORKERS ?= 1
DATA    ?=

app: $(STAMP)
	$(BIN)/painterly app --port $(PORT) --host $(HOST) --workers $(WORKERS) $(if $(DATA),--data-dir $(DATA))

# Lint, format and types first (configured in pyproject.toml), then the tests.
check: $(STAMP)
	$(BIN)/ruff check src tests
	$(BIN)/ruff format --check src tests
	$(BIN)/mypy

test: check
	$(BIN)/python -m pytest

bench: $(STAMP)
	$(BIN)/python -m benchmarks $(BENCH_ARGS)

clean:
	rm -rf $(VENV) build dist src/*.egg-info
