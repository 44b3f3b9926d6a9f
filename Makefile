# Two commands matter: `make demo` (the main job, on a local broker) and
# `make test` (lint, types, and the whole suite against a real broker).
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed-stamp
EXTRAS ?= dev,librdkafka

.PHONY: install lint typecheck test unit integration demo bench clean broker-start broker-stop promtool

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

test: install promtool lint typecheck
	$(BIN)/pytest

unit: install
	$(BIN)/pytest tests/unit

integration: install
	$(BIN)/pytest -m integration

demo: install
	$(BIN)/consentgate demo

bench: install
	$(BIN)/python -m benchmarks.run

broker-start: install
	$(BIN)/consentgate broker start

broker-stop: install
	$(BIN)/consentgate broker stop

clean:
	-$(BIN)/consentgate broker stop 2>/dev/null
	rm -rf .run build *.egg-info .mypy_cache .ruff_cache
