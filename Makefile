# 好差评 — the two commands a newcomer needs: `make run` and `make test`.
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
FLASK := $(VENV)/bin/flask --app wsgi
export FEEDBACK_PORT ?= 5000
# The demo data's city (feedback/demo): `make run` signs its texts 【临江市政务服务】.
DEMO_CITY := 临江市

.PHONY: run test install install-test migrate demo clean bench

$(VENV)/bin/python:
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip

$(VENV)/.installed: setup.cfg pyproject.toml | $(VENV)/bin/python
	$(PY) -m pip install -q -e .
	touch $@

$(VENV)/.installed-test: setup.cfg pyproject.toml $(VENV)/.installed
	$(PY) -m pip install -q -e '.[test]'
	touch $@

install: $(VENV)/.installed

install-test: $(VENV)/.installed-test

## make run: install the bulletin's CJK font when missing, migrate, load the demo city into an empty
## database, serve web + scheduler.
run: install
	@bash tests/support/ensure_fonts.sh
	@export FEEDBACK_ENV=$${FEEDBACK_ENV:-development}; \
	export FEEDBACK_CITY_NAME=$${FEEDBACK_CITY_NAME:-$(DEMO_CITY)}; \
	$(FLASK) db upgrade && \
	bash tests/support/build_prompts.sh && \
	$(FLASK) demo load --if-empty && \
	exec $(PY) -m jobs.devrun

## make test: install system packages when missing, start a throwaway PostgreSQL, run everything
## on every core (pytest-xdist: PYTEST_WORKERS=auto; PYTEST_WORKERS=0 runs in this process), e.g.
## make test PYTEST_ARGS="tests/sms" or make test PYTEST_WORKERS=0 PYTEST_ARGS="-x tests/tickets".
PYTEST_WORKERS ?= auto
test: install-test
	@bash tests/support/ensure_system.sh
	@bash tests/support/build_prompts.sh
	@set -e; \
	if [ -n "$$FEEDBACK_TEST_POSTGRES_URL" ]; then \
		$(PY) -m pytest -n $(PYTEST_WORKERS) $(PYTEST_ARGS); \
	else \
		pgdir=$$(mktemp -d /tmp/feedback-pgtest.XXXXXX); \
		trap 'bash tests/support/pg.sh stop "$$pgdir"' EXIT; \
		export FEEDBACK_TEST_POSTGRES_URL=$$(bash tests/support/pg.sh start "$$pgdir"); \
		$(PY) -m pytest -n $(PYTEST_WORKERS) $(PYTEST_ARGS); \
	fi

$(VENV)/.installed-bench: setup.cfg pyproject.toml $(VENV)/.installed
	$(PY) -m pip install -q -e '.[bench]'
	touch $@

## make bench: benchmarks on a throwaway PostgreSQL (not part of `make test`; 15–20 min): rating submissions
## (issue 3), the ticket queue at 1M tickets and the statistics pages at 10M ratings beside small (issues 4, 7);
## one table in bench-results/report.md. Options go to the runner, e.g. BENCH_ARGS="--quick",
## BENCH_ARGS="--only pages --scale 0.1" or BENCH_ARGS="--only ratings --ratings 200000 --profile".
bench: $(VENV)/.installed-bench
	@bash tests/support/ensure_bench.sh
	$(PY) -m tests.bench.run $(BENCH_ARGS)

clean:
	rm -rf $(VENV) instance/*.sqlite3 .pytest_cache test-artifacts
