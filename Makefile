# billing-mesh: `make run` starts the mesh, `make test` runs the tests.
# Both set everything up first (virtualenv, RabbitMQ, and PostgreSQL for tests).

SHELL := /bin/bash
VENV ?= .venv
BIN := $(VENV)/bin

# The Python the venv is built with (scripts/pick-python.sh): PYTHON=... when given,
# else the newest of python3.13, python3.12, python3.11 (then python3) that runs;
# any version outside 3.11 to 3.13 is refused. One venv at a time: when $(VENV) was
# built with another version, `make setup` builds it again (the stamp names the version).
PICKED := $(shell bash scripts/pick-python.sh $(PYTHON) 2>&1)
ifeq ($(.SHELLSTATUS),0)
PY_VERSION := $(word 1,$(PICKED))
PY := $(word 2,$(PICKED))
PY_MINOR := $(basename $(PY_VERSION))
endif
STAMP := $(VENV)/.installed-$(PY_MINOR)
# the hub default and the exact upstream warning filters, for every process of the venv
PTH := tools/billing_mesh.pth

.PHONY: run token test test-unit test-cluster cluster cluster-stop lint fuzz openapi generate new-service setup interpreter rabbitmq postgres wrk chromium shell services rebuild-analytics bench bench-stream bench-rebuild bench-cluster bench-aio bench-hub chaos example db db-upgrade clean

run: setup rabbitmq
	bash scripts/ensure-rabbitmq.sh --management
	$(BIN)/python -m tools.run

# a token from the local issuer `make run` starts (tools/issuer.py): every scope,
# or SCOPES="bills:read bills:write"; SUBJECT=alice names who it speaks for
# (only the token on stdout: export TOKEN=$$(make -s token))
token:
	@$(MAKE) --no-print-directory setup >&2
	@$(BIN)/python -m tools.issuer token $(if $(SCOPES),--scopes "$(SCOPES)") $(if $(SUBJECT),--subject "$(SUBJECT)")

test: setup lint rabbitmq postgres wrk chromium
	bash scripts/ensure-rabbitmq.sh --management
	$(BIN)/nameko test

# the cluster suite (tests marked cluster: three RabbitMQ nodes of their own, a
# node killed or cut off under load; two aggregators, one killed) and the longest
# runs of the whole mesh (marked long: Kafka and RabbitMQ killed under load, chaos);
# minutes: not in make test. CLUSTER_TESTS="cluster and not partition" runs only
# the cluster tests, the network cut left out
test-cluster: setup lint rabbitmq
	bash scripts/ensure-rabbitmq.sh --management
	$(BIN)/nameko test -m "$${CLUSTER_TESTS:-cluster or long}" tests/integration

# tests/unit alone: no RabbitMQ, no database server, seconds
test-unit: setup lint
	$(BIN)/nameko test tests/unit

# services/ use only the mesh's entrypoints and proxies (pyproject.toml: banned-api)
lint: setup
	$(BIN)/ruff check --quiet .

# the API fuzzer, longer than in make test and with a new seed (printed; FUZZ_SEED=... repeats it).
# It leaves out the two endless streams (GET /analytics/stream, GET /events/stream)
# by their mark in /openapi.json, "x-endless-stream": true on the operation, not by
# path (tests/integration/test_fuzz.py). Your own tool can do the same: schemathesis
#   schemathesis run http://127.0.0.1:8000/openapi.json --exclude-by '/x-endless-stream == true'
# and any other by skipping the operations whose object has x-endless-stream: true.
fuzz: setup rabbitmq
	bash scripts/ensure-rabbitmq.sh --management
	@seed=$${FUZZ_SEED:-$$(od -An -N4 -tu4 /dev/urandom | tr -d ' ')}; \
	echo "fuzz seed: $$seed (repeat with FUZZ_SEED=$$seed make fuzz)"; \
	FUZZ_SEED=$$seed FUZZ_EXAMPLES=$${FUZZ_EXAMPLES:-200} FUZZ_TIMEOUT=$${FUZZ_TIMEOUT:-1800} \
	  $(BIN)/nameko test -s tests/integration/test_fuzz.py; \
	status=$$?; echo "fuzz seed: $$seed"; exit $$status

setup: interpreter $(STAMP)
	@purelib="$$($(BIN)/python -c 'import sysconfig; print(sysconfig.get_paths()["purelib"])')" \
	  || { echo "billing-mesh: $(BIN)/python does not run: make clean, then make setup" >&2; exit 1; }; \
	if ! cmp -s $(PTH) "$$purelib/billing_mesh.pth"; then \
	  cp $(PTH) "$$purelib/billing_mesh.pth"; \
	  echo "billing-mesh: installed $(PTH) in $$purelib (EVENTLET_HUB=mesh.asyncio_hub by default)"; \
	fi

# says which Python (or why none): first, before anything is installed
interpreter:
ifeq ($(PY),)
	@echo '$(subst ','\'',$(PICKED))' >&2; exit 1
else
	@echo "billing-mesh: using Python $(PY_VERSION) ($(PY))"
endif

$(STAMP): requirements.txt requirements-dev.txt pyproject.toml | interpreter
	@have="$$($(BIN)/python -c 'import sys; print("%d.%d" % sys.version_info[:2])' 2>/dev/null)"; \
	if [ "$$have" != "$(PY_MINOR)" ] && [ -e $(VENV) ]; then \
	  [ -f $(VENV)/pyvenv.cfg ] || { echo "billing-mesh: $(VENV) is not a virtualenv; move it away" >&2; exit 1; }; \
	  echo "billing-mesh: $(VENV) has Python $${have:-that no longer runs}; building it again with $(PY_VERSION)"; \
	  rm -rf $(VENV); \
	fi
	test -x $(BIN)/python || $(PY) -m venv $(VENV)
	$(BIN)/pip install -q --disable-pip-version-check -r requirements-dev.txt
	$(BIN)/pip install -q --disable-pip-version-check --no-deps -e .
	rm -f $(VENV)/.installed $(VENV)/.installed-*
	touch $@

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

# the files that derive from contracts/services.py: Procfile, docker-compose.yml's
# RPC services, docker/postgres-init.sql, docker/prometheus/prometheus.yml
generate: setup
	$(BIN)/python -m tools.generate

# a new service written the mesh's way, declared, generated, migrated and tested
# (tools/new_service.py; docs/tutorial.md goes on from there):
# make new-service NAME=shipping [ENTITY=shipment]
new-service: setup
	@test -n "$(NAME)" || { echo "usage: make new-service NAME=shipping [ENTITY=shipment]" >&2; exit 2; }
	$(BIN)/python -m tools.new_service $(NAME) $(if $(ENTITY),--entity $(ENTITY))

# the browser of the page tests (Debian's chromium, driven by Playwright)
chromium:
	@command -v chromium >/dev/null || bash scripts/ensure-chromium.sh

# interactive RPC: n.rpc.customers.get_customer(1)
shell: setup rabbitmq
	$(BIN)/nameko shell --config config.yaml

# the registry view of a running mesh: instances, status and methods per service
services: setup
	$(BIN)/python -m tools.registry_view

# rebuild the analytics from billing's record now, showing progress (docs/operations.md)
rebuild-analytics: setup
	$(BIN)/python -m tools.rebuild_analytics

# every figure against its limit: prints a table, writes bench/results.json; then the
# cluster's figures (bench/cluster_bench.py: one node against three, a node killed)
bench: setup rabbitmq wrk
	bash scripts/ensure-rabbitmq.sh --management
	$(BIN)/python -m bench.mesh_bench
	$(BIN)/python -m bench.cluster_bench

# three RabbitMQ nodes on this machine, joined in one cluster (tools/cluster.py): it
# prints AMQP_URI and RABBITMQ_MANAGEMENT; then AMQP_URI=... RABBITMQ_MANAGEMENT=... QUEUE_TYPE=quorum make run
cluster: setup
	@command -v rabbitmq-server >/dev/null || bash scripts/ensure-rabbitmq.sh
	$(BIN)/python -m tools.cluster start

cluster-stop: setup
	$(BIN)/python -m tools.cluster stop

# fault injection (tools/chaos.py): bills made and cancelled by 16 clients for 30 s while
# billing, inventory, customers, the Kafka bridge, the aggregator and the gateway are
# SIGKILLed in turn and started again; then stock, answers, analytics and Kafka must
# agree (a table of figures; exit 1 if not). On a mesh of its own; not in `make test`
# (tests/integration/test_chaos.py runs a short one). CHAOS_ARGS="--runs 3" repeats it.
chaos: setup rabbitmq
	bash scripts/ensure-rabbitmq.sh --management
	$(BIN)/python -m tools.chaos $(CHAOS_ARGS)

# each service database's revision, its history's head and state (config.yaml's DB_URIS)
db: setup
	$(BIN)/python -m tools.db status

# upgrade the three databases to head in place, as a service's start does
db-upgrade: setup
	$(BIN)/python -m tools.db upgrade

# the asyncio client's example app (mesh.aio + aiohttp) against a running mesh (make run first)
example: setup
	$(BIN)/python -m examples.aio_app --port $${PORT:-8080} --config config.yaml

# mesh.aio's calls/s next to nameko's ClusterRpcProxy, on a mesh of its own
bench-aio: setup rabbitmq
	bash scripts/ensure-rabbitmq.sh --management
	$(BIN)/python -m bench.aio_client_bench

# CPU per socket wait on eventlet's epolls and asyncio hubs and on the mesh's (mesh.asyncio_hub)
bench-hub: setup
	$(BIN)/python -m bench.hub_bench

# the Kafka half's figures only: aggregator vs a plain consumer, bill -> analytics latency
bench-stream: setup
	bash scripts/ensure-rabbitmq.sh --management
	$(BIN)/python -m bench.stream_bench

# one RabbitMQ node with classic queues against three with quorum queues, and a
# node killed under load (bench/cluster_bench.py)
bench-cluster: setup rabbitmq wrk
	bash scripts/ensure-rabbitmq.sh --management
	$(BIN)/python -m bench.cluster_bench

# how long a rebuild of the analytics takes, 10,000 and 100,000 bills (docs/benchmarks.md)
bench-rebuild: setup
	bash scripts/ensure-rabbitmq.sh --management
	$(BIN)/python -m bench.rebuild_bench

clean:
	rm -rf $(VENV) var
