"""The gateway's read cache (``mesh.cache``): reads are served from it, and never
stale after a write through the gateway; writes made elsewhere reach it by event."""
import time

import eventlet
import pytest
from nameko.testing.services import restrict_entrypoints
from nameko.testing.utils import get_container, get_extension

from helpers import Mesh, service_classes
from mesh.cache import ReadCache


def gateway_cache(runner):
    return get_extension(get_container(runner, _gateway_class()), ReadCache).cache


def _gateway_class():
    from services.gateway import GatewayService
    return GatewayService


def start_cached_mesh(runner_factory, mesh_config, change_events=True):
    """The whole mesh in this process, and the gateway's cache to look into.
    Without ``change_events`` the gateway does not listen to them, so only its
    own evictions keep it fresh."""
    from mesh.http import JsonHttpEntrypoint
    runner = runner_factory(mesh_config, *service_classes())
    if not change_events:
        container = get_container(runner, _gateway_class())
        routes = {ext.method_name for ext in container.entrypoints
                  if isinstance(ext, JsonHttpEntrypoint)}
        restrict_entrypoints(container, *routes)
    runner.start()
    return Mesh(mesh_config), gateway_cache(runner)


@pytest.fixture
def cached_mesh(runner_factory, mesh_config):
    return start_cached_mesh(runner_factory, mesh_config)


# through the gateway ----------------------------------------------------------

def test_reads_after_writes_through_the_gateway_are_never_stale(runner_factory, mesh_config):
    # change events would hide a missing eviction here: the gateway ignores them
    mesh, cache = start_cached_mesh(runner_factory, mesh_config, change_events=False)
    assert mesh.http("GET", "/customers/1").json()["name"] == "Mohamed"
    hits = cache.hits
    assert mesh.http("GET", "/customers/1").json()["name"] == "Mohamed"
    assert cache.hits == hits + 1, "the second read should come from the cache"

    for n in range(5):
        name = "Mohamed {}".format(n)
        answer = mesh.http("PUT", "/customers/1", json={"name": name, "email": "med@gmail.com"})
        assert answer.status_code == 200, answer.text
        assert mesh.http("GET", "/customers/1").json()["name"] == name
        assert mesh.http("GET", "/bills/1/full").json()["customer"]["name"] == name

    before = mesh.http("GET", "/products/2").json()["quantity"]
    mesh.http("GET", "/bills/2/full")
    bill = mesh.http("POST", "/bills", json={
        "customer_id": 1, "items": [{"product_id": 2, "quantity": 1}]})
    assert bill.status_code == 201, bill.text
    assert mesh.http("GET", "/products/2").json()["quantity"] == before - 1
    shown = mesh.http("GET", "/bills/2/full").json()["items"][1]["product"]
    assert (shown["id"], shown["quantity"]) == (2, before - 1)

    update = mesh.http("PUT", "/products/2", json={"name": "Laser printer", "price": "1299.00",
                                                   "quantity": 40})
    assert update.status_code == 200, update.text
    assert mesh.http("GET", "/products/2").json()["name"] == "Laser printer"

    created = mesh.http("POST", "/customers", json={"name": "Ali", "email": "ali@mail.com"}).json()
    mesh.http("GET", "/customers/{}".format(created["id"]))
    assert mesh.http("DELETE", "/customers/{}".format(created["id"])).status_code == 204
    assert mesh.http("GET", "/customers/{}".format(created["id"])).status_code == 404


def test_reads_racing_writes_end_with_the_last_write(runner_factory, mesh_config):
    """Readers hammer a customer while it is renamed: after each rename has been
    answered, every read shows it (a read that loaded the old name meanwhile
    must not have been kept)."""
    mesh, _ = start_cached_mesh(runner_factory, mesh_config, change_events=False)
    stop = []

    def hammer():
        while not stop:
            mesh.http("GET", "/customers/2")

    readers = [eventlet.spawn(hammer) for _ in range(4)]
    try:
        for n in range(15):
            name = "Imane {}".format(n)
            answer = mesh.http("PUT", "/customers/2", json={"name": name,
                                                            "email": "imane@gmail.com"})
            assert answer.status_code == 200, answer.text
            for _ in range(3):
                assert mesh.http("GET", "/customers/2").json()["name"] == name
    finally:
        stop.append(True)
        for reader in readers:
            reader.wait()


def test_writes_made_elsewhere_reach_the_cache_by_event(cached_mesh, rpc):
    mesh, cache = cached_mesh
    assert mesh.http("GET", "/customers/3").json()["name"] == "Yassine"
    assert mesh.http("GET", "/products/3").json()["quantity"] == 8
    rpc.customers.update_customer(3, {"name": "Yassine B", "email": "yassine@gmail.com"})
    rpc.inventory.reserve_stock([{"product_id": 3, "quantity": 2}])

    deadline = time.time() + 5
    while time.time() < deadline:
        if (mesh.http("GET", "/customers/3").json()["name"] == "Yassine B"
                and mesh.http("GET", "/products/3").json()["quantity"] == 6):
            break
        eventlet.sleep(0.05)
    else:
        pytest.fail("customer_updated / stock_changed did not evict the cached reads")


def test_billing_bills_the_customer_as_changed_elsewhere(cached_mesh, rpc):
    """Billing's cache of customers: a change made past the gateway (RPC) reaches
    it by event; a deleted customer is billed no more."""
    mesh, _ = cached_mesh
    customer = rpc.customers.create_customer({"name": "Salma", "email": "salma@mail.com"})
    items = [{"product_id": 2, "quantity": 1}]
    assert rpc.billing.create_bill(customer["id"], items)["customer"]["name"] == "Salma"
    rpc.customers.update_customer(customer["id"], {"name": "Salma B", "email": "salma@mail.com"})
    deadline = time.time() + 5
    while rpc.billing.create_bill(customer["id"], items)["customer"]["name"] != "Salma B":
        assert time.time() < deadline, "customer_updated did not reach billing's cache"
        eventlet.sleep(0.05)

    # cached by a bill refused for stock (the customer was looked up first), so it
    # has no bill and can be deleted; billing must not bill it from its cache
    third = rpc.customers.create_customer({"name": "Lina", "email": "lina@mail.com"})
    too_many = [{"product_id": 2, "quantity": 10 ** 6}]
    answer = mesh.http("POST", "/bills", json={"customer_id": third["id"], "items": too_many})
    assert answer.status_code == 409, answer.text
    assert mesh.http("DELETE", "/customers/{}".format(third["id"])).status_code == 204
    answer = mesh.http("POST", "/bills", json={"customer_id": third["id"], "items": items})
    assert answer.status_code == 404, answer.text


def test_with_two_customers_instances_a_read_after_a_write_is_fresh(
        start_mesh, mesh_config, service_processes):
    service_processes("customers", 2, mesh_config)
    mesh = start_mesh(mesh_config, "gateway", "billing", "inventory")
    for n in range(10):
        name = "Mohamed {}".format(n)
        mesh.http("GET", "/customers/1")
        answer = mesh.http("PUT", "/customers/1", json={"name": name, "email": "med@gmail.com"})
        assert answer.status_code == 200, answer.text
        assert mesh.http("GET", "/customers/1").json()["name"] == name
