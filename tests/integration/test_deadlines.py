"""Deadlines: a service that does not answer gives 503 in time, never a hang,
and a request answered 503 never takes effect later."""
import time

import eventlet
import pytest

from helpers import wait_for
from services.billing import BillingService

RPC_TIMEOUT = 1.0


@pytest.fixture
def config(mesh_config):
    mesh_config["RPC_TIMEOUT"] = RPC_TIMEOUT
    return mesh_config


def stocks(mesh):
    return [p["quantity"] for p in mesh.http("GET", "/products").json()["items"]]


def bill_total(mesh):
    return mesh.http("GET", "/bills").json()["page"]["total_items"]


def timed(mesh, method, path, **kwargs):
    started = time.time()
    response = mesh.http(method, path, **kwargs)
    return response, time.time() - started


def test_stopped_service_gives_503_in_time_and_its_request_never_runs(
        start_mesh, container_factory, config, rabbit_manager, rabbit_config):
    mesh = start_mesh(config, "customers", "inventory", "gateway")
    billing = container_factory(BillingService, config)
    billing.start()
    before_stock, before_bills = stocks(mesh), bill_total(mesh)
    billing.stop()  # its queue stays, with nobody consuming

    response, took = timed(mesh, "POST", "/bills",
                           json={"customer_id": 1, "items": [{"product_id": 1, "quantity": 1}]})
    assert response.status_code == 503, response.text
    assert response.json()["error"] == "SERVICE_UNAVAILABLE"
    assert took < RPC_TIMEOUT + 1, "503 took {:.2f} s".format(took)

    health, took = timed(mesh, "GET", "/health")
    assert health.status_code == 503 and health.json()["services"]["billing"] == "down", health.text
    assert took < config["HEALTH_TIMEOUT"] + 1

    # billing comes back: the abandoned request must not be billed
    container_factory(BillingService, config).start()
    wait_for(lambda: mesh.http("GET", "/health").status_code == 200, 10, "billing back up")
    wait_for(lambda: rabbit_manager.get_queue(rabbit_config["vhost"], "rpc-billing")["messages"] == 0,
             10, "rpc-billing queue drained")
    assert bill_total(mesh) == before_bills
    assert stocks(mesh) == before_stock
    assert mesh.http("POST", "/bills", json={
        "customer_id": 1, "items": [{"product_id": 1, "quantity": 1}]}).status_code == 201


class SlowBillingService(BillingService):
    """Billing whose database write takes longer than the gateway waits."""

    def _store(self, *args):
        eventlet.sleep(RPC_TIMEOUT + 0.5)
        return super()._store(*args)


def test_slow_bill_answered_503_is_rolled_back_and_stock_returned(
        start_mesh, container_factory, config):
    mesh = start_mesh(config, "customers", "inventory", "gateway")
    container_factory(SlowBillingService, config).start()
    before_stock, before_bills = stocks(mesh), bill_total(mesh)

    response, took = timed(mesh, "POST", "/bills",
                           json={"customer_id": 1, "items": [{"product_id": 2, "quantity": 4}]})
    assert response.status_code == 503, response.text
    assert took < RPC_TIMEOUT + 1, "503 took {:.2f} s".format(took)

    # billing finishes sleeping, is refused the commit, gives the stock back
    wait_for(lambda: stocks(mesh) == before_stock, 5, "stock given back")
    assert bill_total(mesh) == before_bills


def test_stopped_read_service_gives_503_while_others_keep_serving(
        start_mesh, container_factory, config):
    from services.customers import CustomersService
    mesh = start_mesh(config, "inventory", "billing", "gateway")
    customers = container_factory(CustomersService, config)
    customers.start()
    # the list: GET /customers/1 would be answered from the gateway's cache
    assert mesh.http("GET", "/customers").status_code == 200
    customers.stop()

    callers = eventlet.GreenPool()
    started = time.time()
    answers = list(callers.imap(lambda _: mesh.session.get(mesh.url + "/customers", timeout=30),
                                range(5)))
    took = time.time() - started
    assert [a.status_code for a in answers] == [503] * 5, [a.text for a in answers]
    assert took < RPC_TIMEOUT + 1, "five 503s took {:.2f} s".format(took)
    assert mesh.http("GET", "/products/1").status_code == 200  # inventory unaffected
