# Two commands matter: `make demo` (the main job, on a local broker) and
# `make test` (lint, types, and the whole suite against a real broker).
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed-stamp
EXTRAS ?= dev,librdkafka

.PHONY: install lint typecheck test unit integration demo bench privacy-report clean broker-start broker-stop promtool

install: $(STAMP)

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	$(BIN)/python -m pip install -q -e '.[$(EXTRAS)]'
	touch $(STAMP)

# promtool checks the alert rules; it comes from Debian's `prometheus` package.
promtool:
	@command -v promtool >/dev/null 2>&1 || { \
	  echo "installing promtool (Debian package prometheus)"; \
	  if [ "$$(id -u)" = 0 ]; then SUDO=; else SUDO=sudo; fi; \
	  $$SUDO apt-get update -qq && \
	  DEBIAN_FRONTEND=noninteractive $$SUDO apt-get install -y -qq --no-install-recommends prometheus >/dev/null; }

lint: install
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

typecheck: install
	$(BIN)/mypy

# The suite runs in TEST_PROCESSES processes (pytest-xdist), whole files to one process,
# longest files first (tests/conftest.py orders them); each process starts its own
# local broker. Most of a Kafka test is waiting on the broker and worker subprocesses,
# so two processes halve the time even on a busy 2-core machine.
# TEST_PROCESSES=0 runs the suite in this one process.
TEST_PROCESSES ?= 2

test: install promtool lint typecheck
	$(BIN)/pytest -n $(TEST_PROCESSES) --dist loadfile --no-loadscope-reorder

unit: install
	$(BIN)/pytest tests/unit

integration: install
	$(BIN)/pytest -m integration

demo: install
	$(BIN)/consentgate demo

bench: install
	$(BIN)/python -m benchmarks.run

# What analysts get and at what risk (PRIVACY.md): live runs with 1, 2 and 4 workers on a
# private broker (about 12 minutes), then in-process runs over k and the hold bound, and
# over the time of day (about 8 minutes).
privacy-report: install
	$(BIN)/python -m benchmarks.privacy_report --workers 1 2 4
	$(BIN)/python -m benchmarks.privacy_report --sweep --out benchmarks/results/privacy-sweep.json
	$(BIN)/python -m benchmarks.privacy_report --day-hours 0 4 12 16 \
	  --out benchmarks/results/privacy-day.json

broker-start: install
	$(BIN)/consentgate broker start

broker-stop: install
	$(BIN)/consentgate broker stop

clean:
	-$(BIN)/consentgate broker stop 2>/dev/null
	rm -rf .run build *.egg-info .mypy_cache .ruff_cache
