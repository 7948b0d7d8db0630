"""The mesh under failure, with services as real ``nameko run`` processes:
instances killed under load, graceful stop, broker restart."""
import os
import signal
import subprocess
import time

import eventlet
import pytest
import requests

from helpers import rabbitmqctl, wait_for

SLOW_BILLING = "tests.integration.services_under_test.slow_billing"


def stock(mesh, product_id):
    return mesh.http("GET", "/products/{}".format(product_id)).json()["quantity"]


def bill_count(mesh):
    return mesh.http("GET", "/bills").json()["page"]["total_items"]


@pytest.fixture
def config(mesh_config):
    mesh_config["RPC_TIMEOUT"] = 5
    return mesh_config


def test_concurrent_bills_across_two_inventory_instances_never_oversell(
        start_mesh, config, service_processes):
    service_processes("inventory", 2, config)
    mesh = start_mesh(config, "customers", "billing", "gateway")
    lamp = mesh.http("POST", "/products", json={"name": "Lamp", "price": "9.90", "quantity": 15}).json()
    body = {"customer_id": 1, "items": [{"product_id": lamp["id"], "quantity": 1}]}

    pool = eventlet.GreenPool(40)
    statuses = list(pool.imap(lambda _: mesh.session.post(mesh.url + "/bills", json=body,
                                                          timeout=30).status_code, range(40)))
    assert sorted(statuses) == [201] * 15 + [409] * 25
    assert stock(mesh, lamp["id"]) == 0
    assert bill_count(mesh) == 3 + 15


def test_killing_one_instance_under_load_leaves_the_mesh_answering(
        start_mesh, config, service_processes):
    instances = service_processes("inventory", 2, config)
    mesh = start_mesh(config, "customers", "billing", "gateway")
    answers = []

    def get(n):
        started = time.time()
        status = mesh.session.get(mesh.url + "/products/1", timeout=30).status_code
        answers.append((n, status, time.time() - started))

    pool = eventlet.GreenPool(20)
    for n in range(400):
        if n == 150:
            instances[0].send_signal(signal.SIGKILL)
        pool.spawn(get, n)
    pool.waitall()

    statuses = [status for _, status, _ in answers]
    slowest = max(took for _, _, took in answers)
    assert len(answers) == 400 and set(statuses) <= {200, 503}, set(statuses)
    assert slowest < config["RPC_TIMEOUT"] + 1, "a request took {:.2f} s".format(slowest)
    after = [status for n, status, _ in sorted(answers) if n >= 250]
    assert after == [200] * len(after), "requests after the kill failed: {}".format(after)
    print("503s during the kill: {} of 400, slowest answer {:.2f} s".format(
        statuses.count(503), slowest))


def test_sigterm_lets_an_inflight_bill_finish(start_mesh, config, service_processes, tmp_path):
    mesh = start_mesh(config, "customers", "inventory", "gateway")
    (billing,) = service_processes(SLOW_BILLING, 1, config, queue="rpc-billing")
    log = tmp_path / "{}.0.log".format(SLOW_BILLING)

    pool = eventlet.GreenPool()
    posted = pool.spawn(mesh.session.post, mesh.url + "/bills", timeout=30,
                        json={"customer_id": 2, "items": [{"product_id": 3, "quantity": 2}]})
    wait_for(lambda: "storing slowly" in log.read_text(), 10, "the bill in flight")
    billing.send_signal(signal.SIGTERM)

    response = posted.wait()
    assert response.status_code == 201, response.text
    assert billing.wait(timeout=20) is not None
    assert stock(mesh, 3) == 6
    assert response.json()["id"] == 4
    # billing is gone: the bill count now comes from a fresh instance
    service_processes("billing", 1, config)
    bills = mesh.http("GET", "/bills")
    assert bills.status_code == 200, bills.text
    assert bills.json()["page"]["total_items"] == 4


def test_sigterm_under_load_stops_within_10_s_and_finishes_what_it_started(
        start_mesh, config, service_processes, tmp_path):
    """billing (2 s per bill) on the asyncio hub, under a steady load of bills
    and reads, gets SIGTERM: it exits within 10 s, every bill it had taken is
    answered 201, and the stock taken is exactly the units billed."""
    mesh = start_mesh(config, "customers", "inventory", "gateway")
    (billing,) = service_processes(SLOW_BILLING, 1, config, queue="rpc-billing")
    log = tmp_path / "{}.0.log".format(SLOW_BILLING)
    stock_before, bills_before = stock(mesh, 1), bill_count(mesh)
    answers, stopping = [], []

    def bill(n):
        response = requests.post(mesh.url + "/bills", timeout=30, json={
            "customer_id": 1, "items": [{"product_id": 1, "quantity": 1}]})
        answers.append((n, response.status_code, bool(stopping)))

    def read(n):
        requests.get(mesh.url + "/bills/1", timeout=30)

    pool = eventlet.GreenPool(40)
    for n in range(8):
        pool.spawn(bill, n)
        pool.spawn(read, n)
    wait_for(lambda: log.read_text().count("storing slowly") >= 5, 15, "bills in flight")
    stopping.append(time.time())
    billing.send_signal(signal.SIGTERM)
    try:
        billing.wait(timeout=10)
    except subprocess.TimeoutExpired:
        pytest.fail("billing did not exit within 10 s of SIGTERM")
    took = time.time() - stopping[0]
    pool.waitall()

    made = [status for _, status, _ in answers if status == 201]
    assert set(status for _, status, _ in answers) <= {201, 503}, answers
    assert len(made) >= 5, "the bills in flight at SIGTERM were not all answered: {}".format(answers)
    service_processes("billing", 1, config)
    assert bill_count(mesh) - bills_before == len(made)
    assert stock_before - stock(mesh, 1) == len(made), "stock taken differs from units billed"
    print("billing exited {:.2f} s after SIGTERM; {} bills answered 201, {} answered 503".format(
        took, len(made), len(answers) - len(made)))


def test_services_reconnect_within_10_s_of_a_broker_restart(config, service_processes):
    for name in ("customers", "inventory", "billing"):
        service_processes(name, 1, config)
    service_processes("gateway", 1, config, queue=False)
    url = "http://" + config["WEB_SERVER_ADDRESS"]
    wait_for(lambda: requests.get(url + "/health", timeout=5).status_code == 200, 30, "mesh healthy")

    rabbitmqctl("stop_app")
    try:
        started = time.time()
        down = requests.get(url + "/health", timeout=10)
        took = time.time() - started
        assert down.status_code == 503, down.text
        assert took < config["HEALTH_TIMEOUT"] + 1, "503 with the broker away took {:.2f} s".format(took)
        bill = requests.post(url + "/bills", timeout=10, json={
            "customer_id": 1, "items": [{"product_id": 1, "quantity": 1}]})
        assert bill.status_code == 503, bill.text
    finally:
        rabbitmqctl("start_app")
    back = time.time()

    def bill_made():
        response = requests.post(url + "/bills", timeout=10, json={
            "customer_id": 1, "items": [{"product_id": 1, "quantity": 1}]})
        return response.status_code == 201

    wait_for(lambda: requests.get(url + "/health", timeout=5).status_code == 200, 10,
             "every service serving again within 10 s of the broker's return")
    wait_for(bill_made, 10 - (time.time() - back), "a bill made within 10 s")
    print("serving again {:.2f} s after the broker came back".format(time.time() - back))
    wait_for(lambda: os.system("rabbitmqctl -q await_startup >/dev/null 2>&1") == 0, 60,
             "RabbitMQ fully started again")
