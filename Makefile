# Each target does its own set-up: a virtualenv in .venv with the pinned ranges installed.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
STACK ?= dev
PLAN_DIR ?= build/plan/$(STACK)

.PHONY: test plan verify bench clean

$(BIN)/.installed: requirements.txt requirements-dev.txt
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -r requirements-dev.txt
	touch $@

test: $(BIN)/.installed
	$(BIN)/python -m pytest $(PYTEST_ARGS)

plan: $(BIN)/.installed
	$(BIN)/python -m tools.plan --stack $(STACK) --out $(PLAN_DIR) $(PLAN_ARGS)

verify: $(BIN)/.installed
	$(BIN)/python -m tools.verify --stack $(STACK) $(VERIFY_ARGS)

# Results go to build/bench/; the committed ones in docs/ change only with --publish (BENCH_ARGS="--full --publish").
bench: $(BIN)/.installed
	$(BIN)/python -m tools.bench $(BENCH_ARGS)

clean:
	rm -rf $(VENV) build .pytest_cache .hypothesis
