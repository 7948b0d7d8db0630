"""Exactly-once writes (``mesh.inbox``) against the real RabbitMQ and databases:
a service killed right after a write committed, before it acknowledged the
request (``services_under_test/exit_after_commit.py``), is started again;
RabbitMQ delivers the request again, it is answered what the first run
recorded, and the database holds the effect once."""
import pytest

from contracts.errors import InsufficientStock
from helpers import query, wait_for
from services_under_test.exit_after_commit import EXIT_CODE

EXITING = "tests.integration.services_under_test.exit_after_commit"


@pytest.fixture(params=["sqlite", "postgresql"])
def config(request, mesh_config):
    mesh_config["RPC_TIMEOUT"] = 10
    if request.param == "postgresql":
        make = request.getfixturevalue("postgres_db")
        mesh_config["DB_URIS"] = {key: make() for key in mesh_config["DB_URIS"]}
    return mesh_config


def crash_after_commit(service_processes, config, module, exiting, call):
    """Start ``module``'s service as ``exiting``, its class in
    ``exit_after_commit.py`` that ends the process right after one method's
    commit, make ``call()`` (an ``RpcReply``) and see the process exit after
    the commit (``restart`` starts the service itself again). The reply, not
    yet waited for."""
    (first,) = service_processes("{}:{}".format(EXITING, exiting), 1, config,
                                 queue="rpc-" + module)
    reply = call()
    assert first.wait(timeout=30) == EXIT_CODE, "it did not exit after the commit"
    return reply


def restart(service_processes, config, module):
    service_processes(module, 1, config)


def log_says(tmp_path, module, n, text_):
    return text_ in (tmp_path / "{}.{}.log".format(module, n)).read_text()


def test_create_customer_redelivered_after_a_crash_applies_once(
        service_processes, config, rpc, tmp_path):
    customer = {"name": "Ali", "email": "ali@mail.com"}
    reply = crash_after_commit(service_processes, config, "customers", "CreateCustomerExits",
                               lambda: rpc.customers.create_customer.call_async(customer))
    # committed before the crash, never answered
    assert query(config, "customers", "SELECT id, email FROM customers WHERE id > 3") == [
        (4, "ali@mail.com")]

    restart(service_processes, config, "customers")
    # without the inbox the second run would answer EMAIL_TAKEN
    assert reply.result() == {"id": 4, "name": "Ali", "email": "ali@mail.com"}
    assert log_says(tmp_path, "customers", 1, "again from its inbox record")
    assert query(config, "customers", "SELECT count(*) FROM customers") == [(4,)]
    assert query(config, "customers", "SELECT method FROM inbox") == [
        ("customers.create_customer",)]
    # the next call is a call of its own
    assert rpc.customers.create_customer({"name": "B", "email": "b@mail.com"})["id"] == 5


def test_reserve_stock_redelivered_after_a_crash_takes_the_stock_once(
        service_processes, config, rpc):
    # no reservation id: each run would make its own, so only the inbox tells them apart
    reply = crash_after_commit(service_processes, config, "inventory", "ReserveStockExits",
                               lambda: rpc.inventory.reserve_stock.call_async(
                                   [{"product_id": 1, "quantity": 2}]))
    assert query(config, "inventory", "SELECT quantity FROM products WHERE id = 1") == [(9,)]
    (made,) = query(config, "inventory",
                    "SELECT id FROM stock_reservations ORDER BY created_at DESC LIMIT 1")

    restart(service_processes, config, "inventory")
    answer = reply.result()
    assert answer["reservation_id"] == made.id
    assert answer["items"][0]["quantity"] == 2
    assert str(answer["items"][0]["unit_price"]) == "3200.00"  # a Decimal, as first answered
    assert query(config, "inventory", "SELECT quantity FROM products WHERE id = 1") == [(9,)]
    assert query(config, "inventory", "SELECT count(*) FROM stock_reservations") == [(1,)]


def test_create_bill_redelivered_after_a_crash_bills_once(
        service_processes, config, rpc, start_mesh):
    start_mesh(config, "customers", "inventory")
    reply = crash_after_commit(service_processes, config, "billing", "CreateBillExits",
                               lambda: rpc.billing.create_bill.call_async(
                                   customer_id=1, items=[{"product_id": 2, "quantity": 3}]))
    assert query(config, "billing", "SELECT id, customer_id FROM bills WHERE id > 3") == [(4, 1)]

    restart(service_processes, config, "billing")
    bill = reply.result()
    assert bill["id"] == 4 and str(bill["total"]) == "3897.00"
    assert bill["customer"]["id"] == 1 and bill["billing_date"].tzinfo is not None
    # the recorded answer is the bill as stored, to the microsecond
    stored = rpc.billing.get_bill(4)
    assert bill["billing_date"] == stored["billing_date"]
    assert [line["unit_price"] for line in bill["items"]] == [
        item["unit_price"] for item in stored["items"]]
    assert query(config, "billing", "SELECT count(*) FROM bills") == [(4,)]
    assert query(config, "billing", "SELECT method FROM inbox") == [("billing.create_bill",)]
    # the stock was taken once, by one reservation
    assert rpc.inventory.get_product(2)["quantity"] == 10 - 3
    assert query(config, "inventory", "SELECT count(*) FROM stock_reservations") == [(1,)]
    # its event left all the same (the outbox relay, after the restart)
    wait_for(lambda: query(config, "billing", "SELECT count(*) FROM outbox_events "
                           "WHERE dispatched_at IS NULL") == [(0,)], 15, "the outbox relayed")


def test_cancel_bill_redelivered_after_a_crash_cancels_once(
        service_processes, config, rpc):
    reply = crash_after_commit(service_processes, config, "billing", "CancelBillExits",
                               lambda: rpc.billing.cancel_bill.call_async(2))
    (cancelled,) = query(config, "billing", "SELECT status, cancelled_at FROM bills WHERE id = 2")
    assert cancelled.status == "cancelled"

    restart(service_processes, config, "billing")
    bill = reply.result()
    assert bill["status"] == "cancelled" and bill["cancelled_at"].tzinfo is not None
    assert rpc.billing.get_bill(2)["cancelled_at"] == bill["cancelled_at"]
    # one bill_cancelled, written with the first run's commit
    assert query(config, "billing", "SELECT count(*) FROM outbox_events "
                 "WHERE event_type = 'bill_cancelled'") == [(1,)]
    assert query(config, "billing", "SELECT method FROM inbox") == [("billing.cancel_bill",)]


@pytest.mark.parametrize("config", ["sqlite"], indirect=True)
def test_calls_that_roll_back_inside_still_answer_and_record(start_mesh, config, rpc):
    """reserve_stock's repeated id rolls its insert back inside the call's one
    transaction, then answers the first reservation: that answer is recorded
    too; a refused call records nothing."""
    start_mesh(config, "inventory")
    first = rpc.inventory.reserve_stock([{"product_id": 3, "quantity": 1}], "r-1")
    again = rpc.inventory.reserve_stock([{"product_id": 3, "quantity": 1}], "r-1")
    assert again == first and rpc.inventory.get_product(3)["quantity"] == 8 - 1
    with pytest.raises(InsufficientStock):
        rpc.inventory.reserve_stock([{"product_id": 3, "quantity": 99}])
    assert rpc.inventory.release_stock("r-1")["restocked"] is True
    assert rpc.inventory.get_product(3)["quantity"] == 8
    assert query(config, "inventory", "SELECT method FROM inbox ORDER BY created_at") == [
        ("inventory.reserve_stock",), ("inventory.reserve_stock",), ("inventory.release_stock",)]
