# The two commands of the README: `make demo` and `make test`. Each sets itself up on a fresh machine.
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: demo test test-slow test-all fuzz-nightly lint clean

$(STAMP): pyproject.toml
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e ".[dev]"
	@touch $(STAMP)

# The main job: tiny model, shapes data, SFT then GRPO, evaluation before/after each, runs/demo/report.html.
# Its time budget counts from when make started, so that a fresh clone's .venv setup fits in it too.
DEMO_START := $(shell date +%s)
demo: $(STAMP)
	$(BIN)/vlmr1 demo --output_dir runs/demo --started_at $(DEMO_START)

# Tests run in TEST_WORKERS processes (pytest-xdist), one thread each: the tiny models gain little from threads.
TEST_WORKERS ?= 2
PYTEST := OMP_NUM_THREADS=1 $(BIN)/python -m pytest -q -n $(TEST_WORKERS)

# Everything but the `slow` marker (multi-process torchrun runs, kill-and-resume, the launch scripts): under 5 min.
test: $(STAMP)
	$(PYTEST) -m "not slow" tests

test-slow: $(STAMP)
	$(PYTEST) -m slow tests

test-all: $(STAMP)
	$(PYTEST) tests

# Property tests at nightly size: 10,000 examples per reward and parser (about 15 minutes on 2 cores).
fuzz-nightly: $(STAMP)
	HYPOTHESIS_PROFILE=nightly $(BIN)/python -m pytest -q -m "not slow" tests/reliability tests/rewards

lint: $(STAMP)
	$(BIN)/ruff check src tests benchmarks

clean:
	rm -rf runs .pytest_cache
