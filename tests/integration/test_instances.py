"""Two instances of a service, each its own ``nameko run`` process, sharing one
database: they seed it once and never oversell stock, on SQLite and PostgreSQL."""
import pytest

from contracts.errors import InsufficientStock

INSTANCES = 2
STOCK = 25
BUYERS = 80  # concurrent reservations of one unit each


@pytest.fixture(params=["sqlite", "postgresql"])
def inventory_uri(request, tmp_path):
    if request.param == "sqlite":
        return "sqlite:///{}/inventory.db".format(tmp_path)
    return request.getfixturevalue("postgres_db")()


@pytest.fixture
def two_inventories(mesh_config, inventory_uri, service_processes):
    mesh_config["DB_URIS"]["inventory"] = inventory_uri
    return service_processes("inventory", INSTANCES, mesh_config)


def test_instances_started_together_seed_once(two_inventories, rpc):
    assert [p["name"] for p in rpc.inventory.list_products()["items"]] == [
        "Computer", "Printer", "Smart Phone"]


def test_concurrent_reservations_across_instances_never_oversell(two_inventories, rpc):
    product = rpc.inventory.create_product({"name": "Lamp", "price": "12.50", "quantity": STOCK})
    item = [{"product_id": product["id"], "quantity": 1}]

    replies = [rpc.inventory.reserve_stock.call_async(item) for _ in range(BUYERS)]
    outcomes = {"reserved": 0, "refused": 0}
    for reply in replies:
        try:
            reply.result()
            outcomes["reserved"] += 1
        except InsufficientStock:
            outcomes["refused"] += 1

    assert outcomes == {"reserved": STOCK, "refused": BUYERS - STOCK}
    assert rpc.inventory.get_product(product["id"])["quantity"] == 0


def test_both_instances_serve_calls(two_inventories, rpc):
    """RabbitMQ spreads calls over both consumers (competing consumers)."""
    replies = [rpc.inventory.ping.call_async() for _ in range(100)]
    answered_by = {reply.result()["instance"] for reply in replies}
    assert len(answered_by) == INSTANCES, answered_by
