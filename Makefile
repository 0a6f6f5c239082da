# The commands the README names: run, test, lint, bench.
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed

.PHONY: run test lint typecheck unit bench system-deps clean

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -e '.[dev]'
	touch $(STAMP)

# Bytecode is written here because an environment may forbid writing it at import
# (PYTHONDONTWRITEBYTECODE), which costs every broker start a compile of the sources.
CONSOLE ?= http://127.0.0.1:9095
run: $(STAMP)
	$(PY) -m compileall -q src >/dev/null
	@echo "odradek: Kafka on 127.0.0.1:9092, console on $(CONSOLE)/, metrics on $(CONSOLE)/metrics"
	$(PY) -m odradek broker --set console.listeners=$(CONSOLE)

# kcat for the interop tests; java and the zookeeper jars for the cluster tests;
# chromium and chromedriver for the console's browser tests.
system-deps:
	@if ! command -v kcat >/dev/null 2>&1 || ! command -v java >/dev/null 2>&1 \
		|| [ ! -f /usr/share/java/zookeeper.jar ] \
		|| [ ! -x /usr/bin/chromium ] || [ ! -x /usr/bin/chromedriver ]; then \
		bash scripts/install-system-deps.sh; fi

lint: $(STAMP)
	$(VENV)/bin/ruff check src tests $(wildcard benchmarks examples)
	$(VENV)/bin/ruff format --check src tests $(wildcard benchmarks examples)

typecheck: $(STAMP)
	$(VENV)/bin/mypy

unit: $(STAMP) system-deps
	$(VENV)/bin/pytest -q

test: lint typecheck unit

bench: $(STAMP)
	$(PY) -m compileall -q src >/dev/null
	$(PY) benchmarks/run.py
	$(PY) benchmarks/group.py
	$(PY) benchmarks/group_join.py
	$(PY) benchmarks/scale.py --partitions 10000
	$(PY) benchmarks/scrape.py --partitions 10000
	$(PY) benchmarks/console_pages.py
	$(PY) benchmarks/recovery.py --no-clean-restart
	$(PY) benchmarks/cluster.py
	$(PY) benchmarks/transactions.py
	$(PY) benchmarks/security.py

clean:
	rm -rf $(VENV) .mypy_cache .pytest_cache .ruff_cache
