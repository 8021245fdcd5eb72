# Each target does its own set-up: a virtualenv in .venv with the pinned requirements installed,
# the same versions `pulumi up` installs (Pulumi.yaml: toolchain pip, virtualenv .venv).
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
STACK ?= dev
PLAN_DIR ?= build/plan/$(STACK)

BASE ?= origin/main

.PHONY: test lint plan plan-diff verify e2e bench schema clean

$(BIN)/.installed: requirements.txt requirements-dev.txt
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -r requirements-dev.txt
	touch $@

test: $(BIN)/.installed
	$(BIN)/python -m pytest $(PYTEST_ARGS)

lint: $(BIN)/.installed
	$(BIN)/ruff check .
	$(BIN)/mypy
	$(BIN)/python -m stack.schema --check

plan: $(BIN)/.installed
	$(BIN)/python -m tools.plan --stack $(STACK) --out $(PLAN_DIR) $(PLAN_ARGS)

# What a change does to access: the stack at $(BASE) against the working tree.
plan-diff: $(BIN)/.installed
	$(BIN)/python -m tools.plan diff --stack $(STACK) --base $(BASE) $(DIFF_ARGS)

verify: $(BIN)/.installed
	$(BIN)/python -m tools.verify --stack $(STACK) $(VERIFY_ARGS)

# From an empty kind cluster to a verified table and back (Pulumi.kind.yaml); needs docker, kind,
# kubectl and the Pulumi CLI. docs/kind.md walks through it.
e2e: $(BIN)/.installed
	$(BIN)/python -m tools.e2e $(E2E_ARGS)

# Results go to build/bench/; the committed ones in docs/ change only with --publish (BENCH_ARGS="--full --publish").
bench: $(BIN)/.installed
	$(BIN)/python -m tools.bench $(BENCH_ARGS)

# Regenerates docs/stack-config.schema.json from the config model.
schema: $(BIN)/.installed
	$(BIN)/python -m stack.schema

clean:
	rm -rf $(VENV) build .pytest_cache .hypothesis .mypy_cache .ruff_cache
