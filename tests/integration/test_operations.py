"""Discovery, health, deadlines for many callers, retries without double billing,
dynamic routes and tracing, through the real gateway over the real broker."""
import logging
import time

import eventlet
import pytest

from contracts.services import NAMEKO_SERVICES, RPC_SERVICES
from helpers import Mesh, wait_for
from mesh.rpc import rpc
from tools.registry_view import main as services_cli
from services.customers import CustomersService
from services.gateway import GatewayService

NEWCOMER = "tests.integration.services_under_test.newcomer"

RPC_TIMEOUT = 1.0


def stock(mesh, product_id):
    return mesh.http("GET", "/products/{}".format(product_id)).json()["quantity"]


def bill_count(mesh):
    return mesh.http("GET", "/bills").json()["page"]["total_items"]


# discovery and health --------------------------------------------------------

def test_services_view_shows_instances_methods_and_status(mesh):
    services = {s["name"]: s for s in mesh.http("GET", "/services").json()["services"]}
    assert set(services) == set(NAMEKO_SERVICES)  # every declared one, started or not
    # not started in this test: listed, and down
    assert (services["analytics"]["instances"], services["analytics"]["status"]) == (0, "down")
    assert services["inventory"]["instances"] == 1 and services["inventory"]["status"] == "up"
    assert {"get_product", "reserve_stock", "release_stock", "ping", "describe"} <= set(
        services["inventory"]["methods"])
    assert "create_bill" in services["billing"]["methods"]
    assert "POST /bills" in services["gateway"]["methods"]


def test_services_cli_prints_the_same(mesh, capsys):
    services_cli(["--url", mesh.url])
    out = capsys.readouterr().out.splitlines()
    assert out[0].split() == ["SERVICE", "INSTANCES", "STATUS", "METHODS"]
    assert any(line.split()[:3] == ["billing", "1", "up"] for line in out), out


def test_stopped_service_shows_down(start_mesh, container_factory, mesh_config):
    mesh = start_mesh(mesh_config, "inventory", "billing", "gateway")
    customers = container_factory(CustomersService, mesh_config)
    customers.start()
    customers.stop()
    services = {s["name"]: s for s in mesh.http("GET", "/services").json()["services"]}
    assert (services["customers"]["instances"], services["customers"]["status"]) == (0, "down")
    assert services["billing"]["status"] == "up"
    health = mesh.http("GET", "/health")
    assert health.status_code == 503 and health.json()["services"]["customers"] == "down"
    assert "customers" in health.json()["message"]
    assert mesh.http("GET", "/health/live").json() == {"status": "ok"}


def test_a_newly_declared_service_is_served_with_no_line_of_the_gateway(
        mesh_config, service_processes):
    """The gateway's health, registry and heartbeats follow the declarations:
    a service declared and run beside it (services_under_test/newcomer.py) is
    pinged, listed with its methods and instances, and its heartbeats heard."""
    service_processes(NEWCOMER, 1, mesh_config, queue="rpc-payments")
    mesh = Mesh(mesh_config)

    def health():
        answer = mesh.http("GET", "/health")
        return answer.status_code == 503 and answer.json()["services"].get("payments") == "up"

    wait_for(health, 10, "GET /health showing payments up (and customers down: 503)")
    answer = mesh.http("GET", "/health").json()
    assert set(answer["services"]) == set(RPC_SERVICES) | {"payments", "streams"}, answer

    def payments():
        found = {s["name"]: s for s in mesh.http("GET", "/services").json()["services"]}
        entry = found.get("payments")
        return entry if entry and entry["instance_list"] else None

    entry = wait_for(payments, 10, "GET /services listing payments with its heartbeat")
    assert (entry["instances"], entry["status"]) == (1, "up"), entry
    assert {"get_balance", "ping", "describe"} <= set(entry["methods"]), entry
    assert entry["instance_list"][0]["pid"] > 0


# many callers, dead or slow services --------------------------------------------

class HungCustomersService(CustomersService):
    """Takes calls and never answers them in time."""

    @rpc
    def get_customer(self, customer_id):
        eventlet.sleep(RPC_TIMEOUT * 4)


@pytest.fixture
def mesh_but_customers(start_mesh, container_factory, mesh_config):
    """Everything but customers, RPC_TIMEOUT short, and the gateway with the pool
    size the Procfile gives it; the test starts customers as it needs."""
    mesh_config["RPC_TIMEOUT"] = RPC_TIMEOUT
    mesh = start_mesh(mesh_config, "inventory", "billing")
    container_factory(GatewayService, dict(mesh_config, max_workers=100)).start()
    return mesh


def many_gets(mesh, path, callers=20):
    pool = eventlet.GreenPool(callers)
    started = time.time()
    answers = list(pool.imap(lambda _: mesh.session.get(mesh.url + path, timeout=30),
                             range(callers)))
    return [a.status_code for a in answers], time.time() - started


def test_twenty_callers_of_a_dead_service_all_get_503_at_once(
        mesh_but_customers, container_factory, mesh_config):
    mesh = mesh_but_customers
    customers = container_factory(CustomersService, mesh_config)
    customers.start()
    customers.stop()
    statuses, took = many_gets(mesh, "/customers/1")
    assert statuses == [503] * 20
    assert took < RPC_TIMEOUT + 1, "20 callers took {:.2f} s".format(took)

    container_factory(CustomersService, mesh_config).start()  # back: served at once
    wait_for(lambda: mesh.http("GET", "/customers/1").status_code == 200, 2, "customers served again")


def test_twenty_callers_of_a_hung_service_all_get_503_within_the_deadline(
        mesh_but_customers, container_factory, mesh_config):
    mesh = mesh_but_customers
    hung = container_factory(HungCustomersService, mesh_config)
    hung.start()

    pool = eventlet.GreenPool()
    slow = pool.spawn(many_gets, mesh, "/customers/1")
    eventlet.sleep(0.2)
    assert mesh.http("GET", "/products/1").status_code == 200  # others still served
    statuses, took = slow.wait()
    assert statuses == [503] * 20
    assert took < RPC_TIMEOUT + 1, "20 callers took {:.2f} s".format(took)

    hung.kill()
    container_factory(CustomersService, mesh_config).start()
    wait_for(lambda: mesh.http("GET", "/customers/1").status_code == 200, 5,
             "calls succeed again once a healthy instance is back")


# retries without double billing ---------------------------------------------------

def test_idempotency_key_replays_the_first_bill(mesh):
    body = {"customer_id": 2, "items": [{"product_id": 2, "quantity": 2}]}
    headers = {"Idempotency-Key": "order-42"}
    first = mesh.http("POST", "/bills", json=body, headers=headers)
    assert first.status_code == 201, first.text
    again = mesh.http("POST", "/bills", json=body, headers=headers)
    assert again.status_code in (200, 201), again.text
    assert again.json() == first.json()
    reordered = mesh.http("POST", "/bills", headers=headers, json={
        "customer_id": 2, "items": [{"quantity": 2, "product_id": 2}]})
    assert reordered.json()["id"] == first.json()["id"]
    assert bill_count(mesh) == 4 and stock(mesh, 2) == 8

    other = mesh.http("POST", "/bills", headers=headers, json={
        "customer_id": 2, "items": [{"product_id": 2, "quantity": 3}]})
    assert other.status_code == 409 and other.json()["error"] == "IDEMPOTENCY_KEY_REUSED", other.text
    assert bill_count(mesh) == 4 and stock(mesh, 2) == 8


def test_idempotency_key_after_a_lost_reply(mesh, rpc):
    """The first attempt made the bill but its caller never saw the answer."""
    made = rpc.billing.create_bill(1, [{"product_id": 1, "quantity": 1}], idempotency_key="lost-1")
    retry = mesh.http("POST", "/bills", headers={"Idempotency-Key": "lost-1"},
                      json={"customer_id": 1, "items": [{"product_id": 1, "quantity": 1}]})
    assert retry.status_code in (200, 201) and retry.json()["id"] == made["id"]
    assert bill_count(mesh) == 4 and stock(mesh, 1) == 10


def test_concurrent_attempts_with_one_key_make_one_bill(mesh):
    body = {"customer_id": 3, "items": [{"product_id": 3, "quantity": 1}]}
    pool = eventlet.GreenPool()
    answers = list(pool.imap(lambda _: mesh.session.post(
        mesh.url + "/bills", json=body, headers={"Idempotency-Key": "twice"}, timeout=30), range(6)))
    assert {a.status_code for a in answers} <= {200, 201}, [a.text for a in answers]
    assert len({a.json()["id"] for a in answers}) == 1
    assert bill_count(mesh) == 4
    wait_for(lambda: stock(mesh, 3) == 7, 5, "stock taken exactly once")


# dynamic routes ---------------------------------------------------------------

@pytest.fixture
def admin_mesh(issuer, start_mesh, mesh_config):
    """The mesh checking tokens; its client reads with one (``customers:read``,
    ``products:read``), the dynamic route's calls carry their own."""
    mesh = start_mesh(mesh_config)
    mesh.session.headers["Authorization"] = "Bearer " + issuer.token(
        scope="customers:read products:read")
    return mesh


def test_dynamic_route_calls_allowed_methods_with_an_admin_token(admin_mesh, issuer):
    auth = {"Authorization": "Bearer " + issuer.token(scope="admin")}
    answer = admin_mesh.http("POST", "/rpc/customers/get_customers", headers=auth, json={"ids": [2, 1]})
    assert answer.status_code == 200, answer.text
    assert [c["id"] for c in answer.json()["items"]] == [1, 2]
    product = admin_mesh.http("POST", "/rpc/inventory/get_product", headers=auth, json={"product_id": 1})
    assert product.json()["price"] == "3200.00"


@pytest.mark.parametrize("path, scope, body, status", [
    ("/rpc/customers/get_customer", None, {"customer_id": 1}, 401),
    ("/rpc/customers/get_customer", "customers:read", {"customer_id": 1}, 403),
    ("/rpc/customers/create_customer", "admin", {"customer": {"name": "X", "email": "x@mail.com"}}, 403),
    ("/rpc/inventory/reserve_stock", "admin", {"items": [{"product_id": 1, "quantity": 11}]}, 403),
    ("/rpc/nobody/get_thing", "admin", {}, 404),
    ("/rpc/customers/get_nothing", "admin", {}, 404),
    ("/rpc/customers/get_customer", "admin", {"customer_id": 1, "bogus": 2}, 400),
])
def test_dynamic_route_refusals_call_nothing(admin_mesh, issuer, path, scope, body, status):
    token = "Bearer " + issuer.token(scope=scope) if scope else None  # None: no header
    response = admin_mesh.http("POST", path, headers={"Authorization": token}, json=body)
    assert response.status_code == status, response.text
    assert response.json()["error"] and response.json()["message"]
    assert admin_mesh.http("GET", "/customers").json()["page"]["total_items"] == 3
    assert stock(admin_mesh, 1) == 11


# tracing --------------------------------------------------------------------

def test_request_id_is_answered_and_follows_the_request(mesh, caplog):
    caplog.set_level(logging.INFO)
    response = mesh.http("POST", "/bills", headers={"X-Request-ID": "trace-abc-123"},
                         json={"customer_id": 1, "items": [{"product_id": 2, "quantity": 1}]})
    assert response.status_code == 201
    assert response.headers["X-Request-ID"] == "trace-abc-123"

    def traced():
        return {(r.name, r.getMessage().split(" ")[0]) for r in caplog.records
                if getattr(r, "request_id", None) == "trace-abc-123"}

    hops = {("mesh.rpc.access", hop) for hop in
            ("billing.create_bill", "customers.get_customer", "inventory.reserve_stock")}
    # a hop's access line is written once its reply is on its way: wait for it
    wait_for(lambda: hops <= traced(), 5, "an access log line with the request id from every hop")
    assert any(name == "services.billing" for name, _ in traced()), traced()

    fresh = mesh.http("GET", "/customers/1")
    assert len(fresh.headers["X-Request-ID"]) == 32
    assert mesh.http("GET", "/nowhere", headers={"X-Request-ID": "r-404"}).headers["X-Request-ID"] == "r-404"
    assert mesh.http("GET", "/health", headers={"X-Request-ID": "bad id!"}).headers["X-Request-ID"] != "bad id!"


# logs ---------------------------------------------------------------------------

def test_a_domain_error_is_one_warning_line_without_traceback(mesh, caplog):
    """A 404 is an answer, not a crash: the gateway and customers each log it as
    one warning, with no traceback, and nothing is logged as an error."""
    caplog.set_level(logging.INFO)
    response = mesh.http("GET", "/customers/999", headers={"X-Request-ID": "quiet-404"})
    assert response.status_code == 404 and response.json()["error"] == "CUSTOMER_NOT_FOUND"

    def warnings():
        return [r for r in caplog.records if r.levelno == logging.WARNING
                and "customer 999 does not exist" in r.getMessage()]

    # the customers worker's line, and the gateway worker's
    wait_for(lambda: len(warnings()) >= 2, 5, "a warning from customers and from the gateway")
    assert all(r.exc_info is None and r.exc_text is None for r in warnings()), \
        [r.getMessage() for r in warnings()]
    assert not [r for r in caplog.records if r.levelno >= logging.ERROR], \
        [r.getMessage() for r in caplog.records if r.levelno >= logging.ERROR]
