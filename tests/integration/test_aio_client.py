"""``mesh.aio``, the asyncio client, against the real RabbitMQ: every service
answered as nameko's own ``ClusterRpcProxy`` answers, 1,000 calls in flight,
exact money and times, the mesh's own errors, failing fast, deadlines against
a frozen instance, request ids in the services' logs, events, a connection the
broker dropped, and the example app (``examples/aio_app.py``) as a process of
its own.

The client's coroutines run on the asyncio loop under eventlet's asyncio hub
(``EVENTLET_HUB=asyncio``), the loop the services started in this process run
on too; ``run`` hands a coroutine to it and waits. Blocking calls (requests,
the management API) stay outside coroutines, between ``run`` steps.
"""
import asyncio
import datetime
import os
import signal
import subprocess
import sys
import time
import uuid
from decimal import Decimal

import eventlet
import eventlet.asyncio
import eventlet.hubs
import pytest
import requests

import mesh.aio
from common.config import ROOT
from contracts.errors import (
    CustomerNotFound, DeadlineExceeded, InvalidInput, NotFound, ServiceUnavailable,
)
from contracts.wire import money_text
from helpers import config_env, free_port, wait_for
from mesh.registry import queue_consumers

CORE = ("customers", "inventory", "billing")


def run(coroutine, timeout=60):
    """``coroutine``'s result, run on the hub's asyncio loop."""
    from eventlet.hubs.asyncio import Hub
    if not isinstance(eventlet.hubs.get_hub(), Hub):
        pytest.fail("mesh.aio's tests run on eventlet's asyncio hub: EVENTLET_HUB=asyncio "
                    ".venv/bin/nameko test ...", pytrace=False)
    return eventlet.asyncio.spawn_for_awaitable(asyncio.wait_for(coroutine, timeout)).wait()


async def timed(awaitable):
    """``(result or exception, seconds taken)``."""
    started = time.monotonic()
    try:
        result = await awaitable
    except Exception as exc:  # noqa: BLE001  the tests look at it
        result = exc
    return result, time.monotonic() - started


@pytest.fixture
def client(mesh_config):
    """A connected client of this test's vhost (closed at teardown)."""
    connected = run(mesh.aio.connect(mesh_config).start())
    yield connected
    run(connected.close())


@pytest.fixture
def frozen(service_processes):
    """``freeze(process)``: SIGSTOP it; every frozen process is resumed at teardown."""
    stopped = []

    def freeze(process):
        os.kill(process.pid, signal.SIGSTOP)
        stopped.append(process)

    yield freeze
    for process in stopped:
        if process.poll() is None:
            os.kill(process.pid, signal.SIGCONT)


# --- plain functions: no broker ------------------------------------------------

def test_error_dicts_become_the_mesh_classes_or_remote_errors():
    exc = mesh.aio.error_from({"exc_type": "CustomerNotFound", "exc_args": ["customer 7 does not exist"],
                               "exc_path": "contracts.errors.CustomerNotFound",
                               "value": "customer 7 does not exist"})
    assert type(exc) is CustomerNotFound and isinstance(exc, NotFound)
    assert (exc.code, exc.status, exc.message) == ("CUSTOMER_NOT_FOUND", 404, "customer 7 does not exist")
    # another library's class of the same name is not the mesh's
    werkzeug = mesh.aio.error_from({"exc_type": "NotFound", "exc_path": "werkzeug.exceptions.NotFound",
                                    "value": "404 Not Found", "exc_args": []})
    assert type(werkzeug) is mesh.aio.RemoteError
    assert (werkzeug.exc_type, werkzeug.value) == ("NotFound", "404 Not Found")
    bug = mesh.aio.error_from({"exc_type": "KeyError", "exc_path": "builtins.KeyError",
                               "value": "'x'", "exc_args": ["x"]})
    assert type(bug) is mesh.aio.RemoteError and str(bug) == "KeyError 'x'"


def test_kombu_uris_become_aio_pika_ones_with_the_same_vhost():
    assert mesh.aio.amqp_url("pyamqp://guest:guest@127.0.0.1:5672/") == "amqp://guest:guest@127.0.0.1:5672/"
    assert mesh.aio.amqp_url("amqp://u:p@h:5672/nameko_test_x") == "amqp://u:p@h:5672/nameko_test_x"
    assert mesh.aio.amqp_url("amqps://u:p@h/v") == "amqps://u:p@h/v"
    with pytest.raises(ValueError):
        mesh.aio.amqp_url("redis://localhost:6379/0")


def test_connect_reads_config_yaml_with_its_environment(monkeypatch):
    monkeypatch.setenv("RPC_TIMEOUT", "2.5")
    monkeypatch.setenv("AMQP_URI", "pyamqp://guest:guest@127.0.0.1:5672/some_vhost")
    client = mesh.aio.connect(os.path.join(ROOT, "config.yaml"))
    assert client.timeout == 2.5
    assert client._core.url == "amqp://guest:guest@127.0.0.1:5672/some_vhost"
    assert mesh.aio.connect("amqp://guest:guest@127.0.0.1:5672/", timeout=1).timeout == 1
    assert mesh.aio.connect({"AMQP_URI": "pyamqp://g:g@h/", "RPC_TIMEOUT": 7}).timeout == 7


# --- against the broker ----------------------------------------------------------

def test_every_service_answers_as_cluster_rpc_proxy_answers(start_mesh, mesh_config, kafka, rpc):
    mesh_config["KAFKA_BOOTSTRAP_SERVERS"] = kafka.bootstrap
    start_mesh(mesh_config, *CORE, "analytics")

    async def calls():
        async with mesh.aio.connect(mesh_config) as client:
            return await asyncio.gather(
                client.customers.get_customer(1),
                client.inventory.get_product(2),
                client.billing.get_full_bill(1),
                client.billing.list_bills(customer_id=2),
                client.analytics.get_customer_stats(1),
                client["analytics"].list_product_stats(),
                client.customers.ping())

    customer, product, bill, bills, stats, products, ping = run(calls())
    assert customer == rpc.customers.get_customer(1) == {
        "id": 1, "name": "Mohamed", "email": "med@gmail.com"}
    assert product == rpc.inventory.get_product(2)
    assert bill == rpc.billing.get_full_bill(1) and bill["total"] == Decimal("9899.00")
    assert bills == rpc.billing.list_bills(customer_id=2)
    assert stats == rpc.analytics.get_customer_stats(1)
    assert products == rpc.analytics.list_product_stats()
    assert ping["service"] == "customers" and ping["status"] == "ok"


def test_a_thousand_calls_in_flight_are_all_answered_rightly(start_mesh, mesh_config):
    start_mesh(mesh_config, "customers", "inventory")

    async def calls():
        # a deadline for correctness, not speed: the services answer in this
        # process, on the client's own loop, ten workers each
        async with mesh.aio.connect(mesh_config, timeout=90) as client:
            asked = [("customers" if n % 2 else "inventory", n % 3 + 1) for n in range(1000)]
            started = time.monotonic()
            answers = await asyncio.gather(*(
                client.customers.get_customer(ident) if service == "customers"
                else client.inventory.get_product(ident) for service, ident in asked))
            return asked, answers, time.monotonic() - started

    asked, answers, took = run(calls(), timeout=100)
    assert len(answers) == 1000
    wrong = [(service, ident, answer) for (service, ident), answer in zip(asked, answers)
             if answer["id"] != ident or ("price" in answer) != (service == "inventory")]
    assert not wrong, wrong[:5]
    names = {answer["name"] for (service, _), answer in zip(asked, answers) if service == "customers"}
    assert names == {"Mohamed", "Imane", "Yassine"}, names
    print("1,000 calls in flight answered in {:.2f} s".format(took))


def test_money_and_times_come_back_exact(start_mesh, mesh_config, client, rpc):
    start_mesh(mesh_config, *CORE)
    price = Decimal("999999999999.99")  # 14 digits: a float would round it

    async def calls():
        product = await client.inventory.create_product(
            {"name": "Desk", "price": price, "quantity": 5})
        bill = await client.billing.create_bill(2, [{"product_id": product["id"], "quantity": 1},
                                                    {"product_id": 3, "quantity": 3}])
        return product, bill, await client.billing.get_bill(bill["id"])

    product, bill, stored = run(calls())
    assert type(product["price"]) is Decimal and product["price"] == price
    lines = {item["product"]["id"]: item for item in bill["items"]}
    assert lines[product["id"]]["line_total"] == price
    unit = rpc.inventory.get_product(3)["price"]
    assert type(bill["total"]) is Decimal and bill["total"] == price + 3 * unit
    assert isinstance(stored["billing_date"], datetime.datetime)
    assert stored == rpc.billing.get_bill(bill["id"])
    assert all(type(item["unit_price"]) is Decimal for item in stored["items"])


def test_errors_are_the_mesh_own_classes(start_mesh, mesh_config, client):
    start_mesh(mesh_config, *CORE)

    async def calls():
        return await asyncio.gather(
            client.customers.get_customer(99),
            client.billing.create_bill(99, [{"product_id": 1, "quantity": 1}]),  # through billing
            client.inventory.create_product({"name": "", "price": "1.00", "quantity": 1}),
            client.customers.no_such_method(),
            client.customers.get_customer(1, 2, 3),
            return_exceptions=True)

    missing, missing_via_billing, invalid, no_method, bad_call = run(calls())
    assert type(missing) is CustomerNotFound, repr(missing)
    assert (missing.code, missing.status) == ("CUSTOMER_NOT_FOUND", 404)
    assert "99" in missing.message and isinstance(missing, NotFound)
    assert type(missing_via_billing) is CustomerNotFound
    assert type(invalid) is InvalidInput and "name" in invalid.message
    assert type(no_method) is mesh.aio.RemoteError and no_method.exc_type == "MethodNotFound"
    assert type(bad_call) is mesh.aio.RemoteError and bad_call.exc_type == "IncorrectSignature"
    assert len(missing.request_id) == 32  # a fresh id per call, to grep the logs for


def test_a_service_without_instances_fails_at_once(mesh_config, client, service_processes):
    def failing_fast(call):
        exc, took = run(timed(call))
        assert isinstance(exc, ServiceUnavailable), repr(exc)
        assert took < 1, "{} took {:.2f} s with a 5 s timeout".format(exc, took)
        return exc

    # never started: no queue at all
    assert "no instance of inventory" in str(failing_fast(client.inventory.get_product(1)))
    # started once, gone now: its durable queue stays, with no consumer
    (customers,) = service_processes("customers", 1, mesh_config)
    assert run(client.customers.get_customer(1))["id"] == 1
    customers.terminate()
    customers.wait(timeout=20)
    wait_for(lambda: queue_consumers(mesh_config["AMQP_URI"], "rpc-customers") == 0, 10,
             "customers gone from its queue")
    time.sleep(mesh.aio.CACHE_UP_S)  # the client's count of 1 is out of date now
    failing_fast(client.customers.get_customer(1))
    # the consumer count said yes (forced here), but no queue is bound: the
    # broker returns the mandatory request
    client._core._counts["ghost"] = (1, time.monotonic() + 3600)
    assert "returned" in str(failing_fast(client.ghost.anything()))


def test_a_missing_service_does_not_fail_calls_to_others(start_mesh, mesh_config, client):
    """The broker closes the channel of a passive declare that finds no queue:
    reading another service's count at that moment must not fail its call."""
    start_mesh(mesh_config, "customers")

    async def calls():
        answers = []
        for _ in range(20):
            client._core._counts.clear()  # both counts read again, at once
            answers.append(await asyncio.gather(client.inventory.get_product(1),
                                                client.customers.get_customer(1),
                                                return_exceptions=True))
        return answers

    for missing, customer in run(calls()):
        assert isinstance(missing, ServiceUnavailable), repr(missing)
        assert isinstance(customer, dict) and customer["id"] == 1, repr(customer)


def test_a_frozen_instance_answers_503_within_the_timeout(mesh_config, service_processes, frozen,
                                                          tmp_path):
    config = dict(mesh_config, RPC_TIMEOUT=1)
    (customers,) = service_processes("customers", 1, config)
    frozen(customers)

    async def calls():
        async with mesh.aio.connect(config) as client:  # RPC_TIMEOUT: 1 s
            default = await timed(client.customers.get_customer(1))
            shorter = await timed(client.customers.get_customer.within(0.5)(2))
            everything = await timed(client.within(0.7).customers.get_customer(3))
        async with mesh.aio.connect(config, timeout=0.6) as client:
            connected = await timed(client.customers.get_customer(1))
        return default, shorter, everything, connected

    for (exc, took), timeout in zip(run(calls()), (1, 0.5, 0.7, 0.6)):
        assert type(exc) is ServiceUnavailable, repr(exc)
        assert timeout - 0.05 <= took < timeout + 0.5, "{:.2f} s for a {} s timeout".format(
            took, timeout)
        assert "did not answer within" in str(exc)
    os.kill(customers.pid, signal.SIGCONT)
    # the requests carried their deadlines: the thawed instance refuses all four
    log = tmp_path / "customers.0.log"
    wait_for(lambda: log.read_text().count("refused customers.get_customer") == 4, 10,
             "the late requests refused by the callee")
    assert run(mesh_once(config, lambda client: client.customers.get_customer(2)))["id"] == 2
    no_time = run(mesh_once(config, lambda client: client.within(0).customers.ping()))
    assert isinstance(no_time, DeadlineExceeded), repr(no_time)


async def mesh_once(config, call):
    async with mesh.aio.connect(config) as client:
        try:
            return await call(client)
        except DeadlineExceeded as exc:
            return exc


def test_the_request_id_is_on_the_services_log_lines(mesh_config, service_processes, tmp_path):
    service_processes("customers", 1, mesh_config)
    ids = ["aio-{}-{}".format(n, uuid.uuid4().hex) for n in range(3)]

    async def calls():
        async with mesh.aio.connect(mesh_config) as client:
            await client.with_request_id(ids[0]).customers.get_customer(1)
            await client.customers.get_customer.with_request_id(ids[1])(2)
            try:
                await client.customers.get_customer(98)
            except CustomerNotFound as exc:
                fresh = exc.request_id
        async with mesh.aio.connect(mesh_config, request_id=ids[2]) as client:
            try:
                await client.customers.get_customer(99)
            except CustomerNotFound as exc:
                assert exc.request_id == ids[2]
        return fresh

    ids.append(run(calls()))
    log = tmp_path / "customers.0.log"
    wait_for(lambda: all("[{}]".format(rid) in log.read_text() for rid in ids), 10,
             "every request id on the customers' log lines")
    lines = [line for line in log.read_text().splitlines() if "[{}]".format(ids[0]) in line]
    assert any("customers.get_customer ok" in line for line in lines), lines
    # and who asked, when the client says
    caller_id = "aio-caller-" + uuid.uuid4().hex

    async def on_behalf():
        async with mesh.aio.connect(mesh_config, request_id=caller_id, caller="erin") as client:
            await client.customers.get_customer(1)

    run(on_behalf())
    wait_for(lambda: "[{}] (erin)".format(caller_id) in log.read_text(), 10,
             "the caller on the customers' log line")


def test_a_caller_named_by_the_client_is_stored_with_the_bills_it_makes_and_cancels(
        start_mesh, mesh_config, client):
    start_mesh(mesh_config)

    async def calls():
        made = await client.with_caller("carol", client_id="shop-app").billing.create_bill(
            1, [{"product_id": 2, "quantity": 1}])
        await client.with_caller("dave").billing.cancel_bill(made["id"])
        return made, await client.billing.get_bill(made["id"])

    made, stored = run(calls())
    assert made["created_by"] == "carol" and made["cancelled_by"] is None
    assert (stored["created_by"], stored["cancelled_by"]) == ("carol", "dave")
    with pytest.raises(ValueError):
        client.with_caller("")


def test_events_arrive_as_they_happen(start_mesh, mesh_config, client, rabbit_manager, rabbit_config):
    start_mesh(mesh_config, *CORE)

    async def follow():
        async with client.events("billing", "bill_created") as bills:
            stock = await client.events("inventory", "stock_changed").start()
            bill = await client.billing.create_bill(2, [{"product_id": 3, "quantity": 2}])
            while True:  # the seeded bills' events may come first (the outbox relays them)
                event = await bills.next(timeout=10)
                if event["bill"]["id"] == bill["id"]:
                    break
            async with asyncio.timeout(10):
                async for change in stock:
                    if 3 in change["product_ids"]:
                        break
            queues = {bills.queue_name, stock.queue_name}
            await stock.close()
        return bill, event, change, queues

    bill, event, change, queues = run(follow())
    assert event["type"] == "bill_created"
    assert event["bill"]["customer_id"] == 2
    assert event["bill"]["total"] == money_text(bill["total"])  # plain JSON: money as text
    assert change == {"product_ids": [3]}
    # its queues were its own, exclusive, and are gone with the streams
    left = {queue["name"] for queue in rabbit_manager.get_queues(rabbit_config["vhost"])}
    assert not queues & left, queues & left


def find_connection(rabbit_manager, vhost, name):
    for connection in rabbit_manager.get_connections():
        properties = connection.get("client_properties") or {}
        if connection.get("vhost") == vhost and properties.get("connection_name") == name:
            return connection["name"]
    return None


def test_calls_work_again_after_the_broker_dropped_the_connection(
        mesh_config, client, service_processes, frozen, rabbit_manager, rabbit_config):
    (customers,) = service_processes("customers", 1, mesh_config)
    assert run(client.customers.get_customer(1))["id"] == 1
    vhost = rabbit_config["vhost"]
    first = wait_for(lambda: find_connection(rabbit_manager, vhost, client.connection_name), 30,
                     "the client's connection in the management API")

    frozen(customers)
    in_flight = eventlet.asyncio.spawn_for_awaitable(
        timed(client.customers.get_customer.within(20)(1)))
    eventlet.sleep(0.3)
    # what a broker restart does to the client, without restarting anybody's broker
    rabbit_manager.delete_connection(first)
    exc, took = in_flight.wait()
    assert type(exc) is ServiceUnavailable and "lost" in str(exc), repr(exc)
    assert took < 5, "the call in flight failed only after {:.2f} s".format(took)
    os.kill(customers.pid, signal.SIGCONT)

    def answered():
        result, _ = run(timed(client.customers.get_customer(2)))
        return isinstance(result, dict) and result["id"] == 2

    back = time.monotonic()
    wait_for(answered, 10, "calls answered again after the reconnect")
    print("answering again {:.2f} s after the drop".format(time.monotonic() - back))
    answers = run(asyncio.gather(*(client.customers.get_customer(n % 3 + 1) for n in range(50))))
    assert [answer["id"] for answer in answers] == [n % 3 + 1 for n in range(50)]
    again = wait_for(lambda: find_connection(rabbit_manager, vhost, client.connection_name), 30,
                     "the client's new connection")
    assert again != first


def test_the_example_app_answers_through_a_running_mesh(start_mesh, mesh_config, kafka, tmp_path):
    mesh_config["KAFKA_BOOTSTRAP_SERVERS"] = kafka.bootstrap
    start_mesh(mesh_config, *CORE, "analytics")
    port = free_port()
    url = "http://127.0.0.1:{}".format(port)
    log = tmp_path / "aio_app.log"
    app = subprocess.Popen(
        [sys.executable, "-m", "examples.aio_app", "--port", str(port), "--config", "config.yaml"],
        cwd=ROOT, env=dict(os.environ, **config_env(mesh_config)),
        stdout=open(log, "ab"), stderr=subprocess.STDOUT)
    try:
        wait_for(lambda: requests.get(url + "/health", timeout=5).status_code == 200, 30,
                 "the example app healthy")
        summary = requests.get(url + "/customers/1/summary", timeout=10,
                               headers={"X-Request-ID": "aio-app-test-1"})
        assert summary.status_code == 200, summary.text
        assert summary.headers["X-Request-ID"] == "aio-app-test-1"
        assert summary.json() == {
            "customer": {"id": 1, "name": "Mohamed", "email": "med@gmail.com"},
            "bills": 1,
            "analytics": {"customer_id": 1, "revenue": "0.00", "bills": 0}}  # no aggregator here
        missing = requests.get(url + "/customers/99/summary", timeout=10)
        assert missing.status_code == 404, missing.text
        assert missing.json()["error"] == "CUSTOMER_NOT_FOUND"
        assert requests.get(url + "/customers/0/summary", timeout=10).status_code == 404
        assert requests.get(url + "/health", timeout=10).json()["services"] == {
            "customers": "up", "billing": "up", "analytics": "up"}
    finally:
        app.terminate()
        try:
            app.wait(timeout=20)
        except subprocess.TimeoutExpired:
            app.kill()
        print(log.read_text()[-3000:])
    assert app.returncode == 0, "the app did not stop cleanly on SIGTERM"
