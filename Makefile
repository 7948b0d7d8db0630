# billing-mesh: `make run` starts the mesh, `make test` runs the tests.
# Both set everything up first (virtualenv, RabbitMQ, and PostgreSQL for tests).

SHELL := /bin/bash
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: run test test-unit lint fuzz openapi setup rabbitmq postgres wrk chromium shell services bench bench-stream clean

run: setup rabbitmq
	$(BIN)/python -m tools.run

test: setup lint rabbitmq postgres wrk chromium
	bash scripts/ensure-rabbitmq.sh --management
	$(BIN)/nameko test

# tests/unit alone: no RabbitMQ, no database server, seconds
test-unit: setup lint
	$(BIN)/nameko test tests/unit

# services/ use only the mesh's entrypoints and proxies (pyproject.toml: banned-api)
lint: setup
	$(BIN)/ruff check --quiet .

# the API fuzzer, longer than in make test and with a new seed (printed; FUZZ_SEED=... repeats it)
fuzz: setup rabbitmq
	bash scripts/ensure-rabbitmq.sh --management
	@seed=$${FUZZ_SEED:-$$(od -An -N4 -tu4 /dev/urandom | tr -d ' ')}; \
	echo "fuzz seed: $$seed (repeat with FUZZ_SEED=$$seed make fuzz)"; \
	FUZZ_SEED=$$seed FUZZ_EXAMPLES=$${FUZZ_EXAMPLES:-200} FUZZ_TIMEOUT=$${FUZZ_TIMEOUT:-1800} \
	  $(BIN)/nameko test -s tests/integration/test_fuzz.py; \
	status=$$?; echo "fuzz seed: $$seed"; exit $$status

setup: $(STAMP)

$(STAMP): requirements.txt requirements-dev.txt pyproject.toml
	@$(PYTHON) -c 'import sys; sys.exit(sys.version_info[:2] != (3, 11) and "billing-mesh needs Python 3.11 (found %d.%d): set PYTHON=/path/to/python3.11" % sys.version_info[:2])'
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --disable-pip-version-check -r requirements-dev.txt
	$(BIN)/pip install -q --disable-pip-version-check --no-deps -e .
	touch $(STAMP)

rabbitmq:
	bash scripts/ensure-rabbitmq.sh

postgres:
	bash scripts/ensure-postgres.sh

# the HTTP load generator of the benchmarks (and of their smoke test)
wrk:
	@command -v wrk >/dev/null || bash scripts/ensure-wrk.sh

# docs/openapi.json, the gateway's HTTP contract as generated (tests/unit/test_docs.py
# fails when it is older than the code)
openapi: setup
	$(BIN)/python -W ignore -c 'from services.gateway import openapi_json; print(openapi_json())' \
	  | $(BIN)/python -m json.tool --indent 1 > docs/openapi.json

# the browser of the page tests (Debian's chromium, driven by Playwright)
chromium:
	@command -v chromium >/dev/null || bash scripts/ensure-chromium.sh

# interactive RPC: n.rpc.customers.get_customer(1)
shell: setup rabbitmq
	$(BIN)/nameko shell --config config.yaml

# the registry view of a running mesh: instances, status and methods per service
services: setup
	$(BIN)/python -m tools.registry_view

# every figure against its limit: prints a table, writes bench/results.json
bench: setup rabbitmq wrk
	bash scripts/ensure-rabbitmq.sh --management
	$(BIN)/python -m bench.mesh_bench

# the Kafka half's figures only: aggregator vs a plain consumer, bill -> analytics latency
bench-stream: setup
	bash scripts/ensure-rabbitmq.sh --management
	$(BIN)/python -m bench.stream_bench

clean:
	rm -rf $(VENV) var
