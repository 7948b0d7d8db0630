"""What a user does: ``make run`` (its launcher, ``python -m tools.run``) and
``nameko shell --config config.yaml``, as real processes."""
import json
import os
import platform
import random
import signal
import subprocess
import sys
import threading
import uuid
from decimal import Decimal

import pytest

from common.broker_users import vhost_of
from contracts.services import BROKER_SERVICES, DECLARATIONS, EDGE, RPC
from helpers import config_env, connected_users, free_port, processes_with, wait_for
from mesh.registry import queue_consumers
from common.config import ROOT


def is_nameko_run_of(pid, module):
    """True for the ``nameko run ... module`` process itself (not honcho's ``sh -c``)."""
    with open("/proc/{}/cmdline".format(pid), "rb") as handle:
        argv = handle.read().decode().split("\0")
    return module in argv and any(arg.endswith("nameko") for arg in argv[:2])


def billed_by_customer(url, http):
    """``{customer_id: (revenue, bills)}`` from the billing database (GET /bills)."""
    totals = {}
    for bill in http.get(url + "/bills?size=100", timeout=10).json()["items"]:
        revenue, count = totals.get(bill["customer_id"], (Decimal(0), 0))
        revenue += sum(Decimal(item["unit_price"]) * item["quantity"] for item in bill["items"])
        totals[bill["customer_id"]] = (revenue, count + 1)
    return {customer: ("{:.2f}".format(revenue), count)
            for customer, (revenue, count) in totals.items()}


def analytics_by_customer(url, http):
    return {stats["customer_id"]: (stats["revenue"], stats["bills"]) for stats in
            http.get(url + "/analytics/customers", timeout=10).json()["items"]}


def test_launcher_reaches_a_healthy_gateway_and_stops_cleanly(mesh_config, tmp_path,
                                                              rabbit_manager):
    """As a new user runs it, tokens checked: the launcher starts the local
    issuer (its keys beside its log folder) and prints a token; the README's
    calls carry it."""
    marker = "MESH_TEST_RUN=" + uuid.uuid4().hex
    mesh_config.update(AUTH="on", AUTH_ISSUER="http://127.0.0.1:{}".format(free_port()))
    env = dict(os.environ, **config_env(mesh_config))
    env["MESH_LOG_DIR"] = str(tmp_path / "log")
    env["INSTANCES"] = "2"
    env["HTTP_ACCESS_LOG"] = "true"  # so the gateway's line is in the trace below
    # its own Kafka (the launcher starts Tansu there) and aggregator state
    env["KAFKA_BOOTSTRAP_SERVERS"] = "127.0.0.1:{}".format(free_port())
    env["STREAMS_STATE_DIR"] = str(tmp_path / "streams")
    # and up: one metrics port per process. Below the ephemeral range, where
    # free_port() draws from: there, outgoing connections of a busy suite can
    # hold the next ports and a process's metrics server could not bind
    env["METRICS_BASE_PORT"] = str(random.randrange(20000, 28000, 100))
    env[marker.split("=")[0]] = marker.split("=")[1]
    launcher = subprocess.Popen([sys.executable, "-m", "tools.run"], cwd=ROOT, env=env,
                                stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    lines = []
    reader = threading.Thread(target=lambda: lines.extend(launcher.stdout), daemon=True)
    reader.start()
    url = "http://" + mesh_config["WEB_SERVER_ADDRESS"]
    try:
        wait_for(lambda: any(line.startswith("export TOKEN=") for line in lines), 90,
                 "the launcher announcing a healthy gateway, and a token")
        assert any("billing-mesh is up: " + url in line for line in lines), lines[-20:]
        import requests
        token = [line for line in lines if line.startswith("export TOKEN=")][0].split("=", 1)[1]
        assert any(line.strip() == "the console, with a token: {}/#token={}".format(
            url, token.strip()) for line in lines)
        assert requests.get(url + "/customers", timeout=10).status_code == 401
        assert list((tmp_path / "issuer").glob("key-*.pem"))
        # from here on, every call as the README's: with the token
        requests = requests.Session()
        requests.headers["Authorization"] = "Bearer " + token.strip()
        ready = requests.get(url + "/health", timeout=10)
        assert ready.status_code == 200 and ready.json()["status"] == "ok", ready.text
        # ready means the whole mesh serves: analytics already count every bill
        assert analytics_by_customer(url, requests) == billed_by_customer(url, requests)
        assert requests.get(url + "/bills/1/full", timeout=10).json()["total"] == "9899.00"
        assert len(processes_with(marker)) >= 8, "launcher, two of each domain service, gateway"
        # INSTANCES=2 of every declared nameko service that may run more than once
        expected = {s.name: min(2, s.max_instances or 2) for s in DECLARATIONS
                    if s.kind in (RPC, EDGE)}
        assert {"customers": 2, "inventory": 2, "billing": 2, "gateway": 1,
                "analytics": 2, "kafka_bridge": 2}.items() <= expected.items()

        seen = []

        def registry():
            found = requests.get(url + "/services", timeout=10).json()["services"]
            seen.append({s["name"]: (s["instances"], s["status"]) for s in found})
            return {s["name"]: s["instances"] for s in found}
        # /health needs the core services only: the others may still be starting
        try:
            wait_for(lambda: registry() == expected, 30, "/services showing all")
        except pytest.fail.Exception:
            pytest.fail("/services never showed {}; last seen (instances, status): {}".format(
                expected, seen[-1:]))

        # each process logs in to RabbitMQ as its own service's user, never
        # as AMQP_URI's guest (common.broker_users)
        vhost = vhost_of(mesh_config["AMQP_URI"])
        wait_for(lambda: connected_users(rabbit_manager, vhost) == set(BROKER_SERVICES), 30,
                 lambda: "a connection of each service's user, only theirs, to {}: {}".format(
                     vhost, connected_users(rabbit_manager, vhost)))

        # every instance, the gateway included, says where it runs: host, pid,
        # Python, the asyncio hub, uptime (the instance list of Eureka's dashboard)
        def instance_count():
            found = requests.get(url + "/services", timeout=10).json()["services"]
            return sum(len(s["instance_list"]) for s in found)
        wait_for(lambda: instance_count() == sum(expected.values()), 10,
                 "a heartbeat from every instance")
        found = requests.get(url + "/services", timeout=10).json()["services"]
        instances = [(s["name"], i) for s in found for i in s["instance_list"]]
        assert {(name, i["hub"], i["python"]) for name, i in instances} == {
            (name, "asyncio", platform.python_version()) for name in expected}, instances
        assert all(i["pid"] > 0 and i["uptime_s"] >= 0 and i["host"] for _, i in instances)
        # the first screen: no deprecation banner from eventlet in any process
        assert not [line for line in lines if "deprecated" in line.lower()], [
            line for line in lines if "deprecated" in line.lower()][:5]

        # every nameko process serves its own metrics, and the launcher's targets
        # file (beside its log folder) lists them for Prometheus
        groups = json.loads((tmp_path / "prometheus" / "targets.json").read_text())
        assert sorted(group["labels"]["service"] for group in groups) == sorted(
            name for name, count in expected.items() for _ in range(count))
        for group in groups:
            [target] = group["targets"]
            text = requests.get("http://{}/metrics".format(target), timeout=10).text
            assert 'mesh_max_workers{{service="{}"}}'.format(group["labels"]["service"]) \
                in text, (group, text[:300])

        # one grep follows a bill through every process it touched
        made = requests.post(url + "/bills", timeout=10, headers={"X-Request-ID": "grep-me-42"},
                             json={"customer_id": 3, "items": [{"product_id": 1, "quantity": 1}]})
        assert made.status_code == 201, made.text
        logs = tmp_path / "log"

        def traced():
            hits = {path.name.split(".")[0] for path in logs.glob("*.log")
                    if "grep-me-42" in path.read_text()}
            return {"gateway", "billing", "customers", "inventory", "kafka_bridge"} <= hits
        # the bridge logs it too: the bill_created event carries the request's context
        wait_for(traced, 10, "the request id in the logs of every service it passed")

        # a dead instance stays dead and visible; the rest of the mesh keeps serving
        billing_pids = [pid for pid in processes_with(marker)
                        if is_nameko_run_of(pid, "services.billing")]
        assert len(billing_pids) == 2, billing_pids
        os.kill(billing_pids[0], signal.SIGKILL)

        def one_billing_left():
            found = requests.get(url + "/services", timeout=10).json()["services"]
            return {s["name"]: s["instances"] for s in found}["billing"] == 1
        wait_for(one_billing_left, 10, "/services showing one billing instance left")
        assert launcher.poll() is None, "the launcher stopped the mesh when one process died"
        assert requests.get(url + "/bills/2/full", timeout=10).status_code == 200
    finally:
        launcher.send_signal(signal.SIGTERM)
        launcher.wait(timeout=30)
    reader.join(timeout=5)
    wait_for(lambda: processes_with(marker) == [], 15, "every mesh process gone after SIGTERM")


def test_nameko_shell_calls_services(mesh, mesh_config):
    env = dict(os.environ, **config_env(mesh_config))
    script = ("print('customer', n.rpc.customers.get_customer(1)['email'])\n"
              "print('total', n.rpc.billing.get_full_bill(1)['total'])\n")
    shell = subprocess.run(
        [os.path.join(os.path.dirname(sys.executable), "nameko"), "shell",
         "--config", "config.yaml"],
        cwd=ROOT, env=env, input=script, capture_output=True, text=True, timeout=60)
    assert "customer med@gmail.com" in shell.stdout, shell.stdout + shell.stderr
    assert "total 9899.00" in shell.stdout, shell.stdout + shell.stderr


def test_nameko_run_typed_by_hand_runs_on_the_asyncio_hub(mesh_config, tmp_path, rpc):
    """Outside the venv's .pth (EVENTLET_HUB unset), `nameko run` starts on
    eventlet's default hub; importing the services starts it again on asyncio."""
    env = dict(os.environ, **config_env(mesh_config))
    env.pop("EVENTLET_HUB", None)
    nameko = os.path.join(os.path.dirname(sys.executable), "nameko")
    # the .pth sets the variable as the interpreter starts: unset it again before
    # nameko's CLI runs, as an interpreter without the .pth would have it
    script = ("import os, sys; os.environ.pop('EVENTLET_HUB', None); "
              "sys.argv = [{!r}, 'run', '--config', 'config.yaml', 'services.customers']; "
              "from nameko.cli.main import main; main()").format(nameko)
    log = tmp_path / "customers.log"
    with open(log, "wb") as out:
        process = subprocess.Popen([sys.executable, "-c", script], cwd=ROOT, env=env,
                                   stdout=out, stderr=subprocess.STDOUT)
    try:
        wait_for(lambda: queue_consumers(mesh_config["AMQP_URI"], "rpc-customers") == 1, 30,
                 "customers consuming its queue")
        described = rpc.customers.describe()
        assert described["hub"] == "asyncio", log.read_text()
        assert "starting again on eventlet's asyncio hub" in log.read_text()
    finally:
        process.terminate()
        process.wait(timeout=15)
