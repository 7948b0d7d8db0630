"""Live analytics end to end: bills through the gateway -> billing's outbox ->
RabbitMQ -> kafka_bridge -> billing.bills -> the aggregator (python -m streams)
-> its output topics -> the analytics service -> the gateway. Sums are checked
against the billing database itself."""
import json
import signal
import time
from collections import defaultdict
from decimal import Decimal

import pytest

from helpers import wait_for

EVERYTHING = ("customers", "inventory", "billing", "kafka_bridge", "analytics", "gateway")


@pytest.fixture
def analytics_mesh(start_mesh, mesh_config, kafka, aggregator):
    mesh_config["KAFKA_BOOTSTRAP_SERVERS"] = kafka.bootstrap
    mesh_config["KAFKA_RETRY_SECONDS"] = 3
    return start_mesh(mesh_config, *EVERYTHING)


def expected_from_billing(mesh):
    """Per customer and per product totals, computed from every active bill
    billing holds (the analytics count no cancelled one)."""
    customers = defaultdict(lambda: {"revenue": Decimal("0"), "bills": 0})
    products = defaultdict(lambda: {"units": 0, "revenue": Decimal("0")})
    bills = [bill for bill in mesh.http("GET", "/bills?size=100").json()["items"]
             if bill["status"] == "active"]
    for bill in bills:
        customer = customers[bill["customer_id"]]
        customer["bills"] += 1
        for item in bill["items"]:
            line = Decimal(item["unit_price"]) * item["quantity"]
            customer["revenue"] += line
            products[item["product_id"]]["units"] += item["quantity"]
            products[item["product_id"]]["revenue"] += line
    return customers, products, len(bills)


def analytics_match(mesh):
    customers, products, _ = expected_from_billing(mesh)
    got_customers = mesh.http("GET", "/analytics/customers").json()["items"]
    got_products = mesh.http("GET", "/analytics/products").json()["items"]
    want_customers = sorted(({"customer_id": cid, "revenue": "{:.2f}".format(v["revenue"]),
                              "bills": v["bills"]} for cid, v in customers.items()),
                            key=lambda c: (-Decimal(c["revenue"]), c["customer_id"]))
    want_products = [{"product_id": pid, "units": v["units"],
                      "revenue": "{:.2f}".format(v["revenue"])} for pid, v in sorted(products.items())]
    return got_customers == want_customers and got_products == want_products


def windows_total(mesh):
    windows = mesh.http("GET", "/analytics/revenue?last=1000").json()["items"]
    return sum(Decimal(w["revenue"]) for w in windows)


def post_bill(mesh, customer_id, items):
    response = mesh.http("POST", "/bills", json={"customer_id": customer_id, "items": [
        {"product_id": product_id, "quantity": quantity} for product_id, quantity in items]})
    assert response.status_code == 201, response.text
    return response.json()


def test_bills_show_in_every_analytics_view_with_exact_sums(analytics_mesh):
    mesh = analytics_mesh
    mouse = mesh.http("POST", "/products", json={"name": "Mouse", "price": "19.99", "quantity": 50}).json()
    for customer_id, items in [(1, [(mouse["id"], 3)]), (2, [(2, 1), (mouse["id"], 1)]),
                               (3, [(1, 1)]), (1, [(mouse["id"], 7), (3, 1)])]:
        post_bill(mesh, customer_id, items)

    wait_for(lambda: analytics_match(mesh), 30,
             "analytics equal to the sums of every bill in billing (seeded ones included)")
    _, _, bill_count = expected_from_billing(mesh)
    assert bill_count == 7
    grand_total = sum(Decimal(c["revenue"]) for c in
                      mesh.http("GET", "/analytics/customers").json()["items"])
    wait_for(lambda: windows_total(mesh) == grand_total, 10, "revenue windows adding up to every bill")

    one = mesh.http("GET", "/analytics/customers/2").json()
    assert (one["bills"], one["revenue"]) == (2, "21116.99")  # seed 19798.00 + 1299.00 + 19.99
    nobody = mesh.http("GET", "/analytics/customers/99").json()
    assert nobody == {"customer_id": 99, "revenue": "0.00", "bills": 0}
    window = mesh.http("GET", "/analytics/revenue?last=1").json()["items"][0]
    assert set(window) == {"start", "end", "revenue"}
    assert mesh.http("GET", "/analytics/revenue?last=0").status_code == 400


def test_stream_pushes_window_totals(analytics_mesh):
    mesh = analytics_mesh
    post_bill(mesh, 1, [(2, 1)])
    wait_for(lambda: windows_total(mesh) > 0, 30, "a revenue window")
    started = time.time()
    response = mesh.http("GET", "/analytics/stream?events=2&last=3", stream=True)
    assert response.headers["Content-Type"].startswith("text/event-stream")
    events = [json.loads(line[len("data: "):]) for line in response.iter_lines(decode_unicode=True)
              if line.startswith("data: ")]
    assert len(events) == 2 and time.time() - started >= 1, "one event a second"
    assert all(1 <= len(event["items"]) <= 3 for event in events)
    assert mesh.http("GET", "/analytics/stream?events=0").status_code == 400


def test_analytics_catch_up_after_the_broker_was_frozen(analytics_mesh, kafka):
    mesh = analytics_mesh
    wait_for(lambda: analytics_match(mesh), 30, "seeded bills counted")
    kafka.process.send_signal(signal.SIGSTOP)
    try:
        for customer_id in (1, 2, 3):
            post_bill(mesh, customer_id, [(3, 1)])
        time.sleep(4)  # past the bridge's retry window: the events wait in RabbitMQ
    finally:
        kafka.process.send_signal(signal.SIGCONT)
    wait_for(lambda: analytics_match(mesh), 30, "analytics caught up, nothing lost or doubled")


def test_a_new_bill_is_visible_within_a_second(analytics_mesh):
    mesh = analytics_mesh
    wait_for(lambda: analytics_match(mesh), 30, "seeded bills counted (warm)")
    delays = []
    for n in range(5):
        before = mesh.http("GET", "/analytics/customers/3").json()["bills"]
        started = time.time()
        post_bill(mesh, 3, [(2, 1)])
        wait_for(lambda: mesh.http("GET", "/analytics/customers/3").json()["bills"] == before + 1,
                 5, "bill {} in analytics".format(n), interval=0.02)
        delays.append(time.time() - started)
    print("bill -> analytics: {}".format(", ".join("{:.3f} s".format(d) for d in delays)))
    assert max(delays) < 1.0, delays


def test_a_cancelled_bill_leaves_every_analytics_view_once(analytics_mesh):
    """Create, cancel, cancel again: analytics count active bills only, the
    stock comes back once, the windows hold the cancellation as a subtraction."""
    mesh = analytics_mesh
    mouse = mesh.http("POST", "/products", json={"name": "Mouse", "price": "19.99",
                                                  "quantity": 50}).json()
    kept = post_bill(mesh, 2, [(mouse["id"], 3)])
    gone = post_bill(mesh, 2, [(mouse["id"], 5), (1, 1)])
    wait_for(lambda: analytics_match(mesh), 30, "both bills counted")
    assert mesh.http("GET", "/analytics/customers/2").json()["bills"] == 3  # the seeded one too
    stock_before = mesh.http("GET", "/products/{}".format(mouse["id"])).json()["quantity"]
    assert stock_before == 50 - 3 - 5

    assert mesh.http("GET", "/bills/{}/full".format(gone["id"])).json()["status"] == "active"
    first = mesh.http("POST", "/bills/{}/cancel".format(gone["id"]))
    assert first.status_code == 200, first.text
    cancelled = first.json()
    assert cancelled["status"] == "cancelled" and cancelled["cancelled_at"]
    again = mesh.http("POST", "/bills/{}/cancel".format(gone["id"]))
    assert again.status_code == 200 and again.json() == cancelled
    assert mesh.http("POST", "/bills/999999/cancel").json()["error"] == "BILL_NOT_FOUND"

    wait_for(lambda: mesh.http("GET", "/products/{}".format(mouse["id"])).json()["quantity"]
             == 50 - 3, 10, "the cancelled bill's stock back, once")
    wait_for(lambda: analytics_match(mesh), 30, "the cancelled bill subtracted")
    customer = mesh.http("GET", "/analytics/customers/2").json()
    # the seeded bill 19798.00 + the kept one 59.97; the cancelled one not at all
    assert (customer["bills"], customer["revenue"]) == (2, "19857.97")
    product = {p["product_id"]: p for p in mesh.http("GET", "/analytics/products").json()["items"]}
    assert (product[mouse["id"]]["units"], product[mouse["id"]]["revenue"]) == (3, "59.97")
    active_total = sum(Decimal(c["revenue"]) for c in
                       mesh.http("GET", "/analytics/customers").json()["items"])
    wait_for(lambda: windows_total(mesh) == active_total, 10,
             "the windows' net revenue adding up to the active bills")

    assert mesh.http("GET", "/bills/{}".format(gone["id"])).json()["status"] == "cancelled"
    assert mesh.http("GET", "/bills/{}".format(kept["id"])).json()["status"] == "active"
    full = mesh.http("GET", "/bills/{}/full".format(gone["id"])).json()  # not the cached one
    assert full["status"] == "cancelled" and full["cancelled_at"] == cancelled["cancelled_at"]
    listed = {bill["id"]: bill["status"]
              for bill in mesh.http("GET", "/bills?size=100").json()["items"]}
    assert listed[gone["id"]] == "cancelled" and listed[kept["id"]] == "active"
