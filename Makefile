# Every target bootstraps its own virtualenv in .venv (Python >= 3.11 is all a machine needs).
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-dev
PY_DIRS := $(wildcard shared functions tests benchmarks)

.PHONY: help venv test test-fast check-artifacts lint format demo bench proto clean

help:
	@echo "make test   - run the test suite (starts its own Redis servers on loopback)"
	@echo "make demo   - closed-loop autoscaling demo on embedded defaults (no AWS, no cluster)"
	@echo "make check-artifacts - the Lambda layer and the server image's Python closure, from the pinned"
	@echo "               requirements (downloads wheels from the package registry)"
	@echo "make lint   - ruff, mypy --strict and the import boundaries (import-linter)"
	@echo "make bench  - benchmarks, results written to BENCHMARKS.md"

$(STAMP): pyproject.toml
	@$(PYTHON) -c 'import sys; sys.exit(0 if sys.version_info >= (3, 11) else "tidegauge needs Python >= 3.11; run: make PYTHON=python3.11 ...")'
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	@touch $(STAMP)

venv: $(STAMP)

test: $(STAMP)
	$(BIN)/python -m pytest

test-fast: $(STAMP)
	$(BIN)/python -m pytest tests/unit

check-artifacts: $(STAMP)
	$(BIN)/python -m pytest -m artifacts tests/artifacts

lint: $(STAMP)
	$(BIN)/ruff check $(PY_DIRS)
	$(BIN)/ruff format --check $(PY_DIRS)
	$(BIN)/mypy
	$(BIN)/lint-imports

format: $(STAMP)
	$(BIN)/ruff check --fix $(PY_DIRS)
	$(BIN)/ruff format $(PY_DIRS)

demo: $(STAMP)
	$(BIN)/tidegauge demo $(DEMO_ARGS)

bench: $(STAMP)
	$(BIN)/python -m benchmarks.run $(BENCH_ARGS)

# The KEDA external scaler's protobuf module, checked in (grpcio-tools is only needed here, by whoever
# changes the .proto; the generated module needs protobuf >= the compiler's version at run time).
proto: $(STAMP)
	$(BIN)/python -m pip install --quiet 'grpcio-tools>=1.85,<1.86'
	cd shared && ../$(BIN)/python -m grpc_tools.protoc -I. --python_out=. tidegauge/keda/externalscaler.proto

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache .hypothesis
