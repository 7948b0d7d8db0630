"""The HTTP contract (docs/http.md), through the real gateway, over the real broker,
with every service running (in this process, one nameko container each)."""
from decimal import Decimal

import pytest

from contracts.services import REQUIRED_SERVICES, RPC_SERVICES, STREAMS
from mesh.tracing import AUTH_OFF_WARNING
from helpers import wait_for

JSON_TYPE = {"Content-Type": "application/json"}


def stock(mesh, product_id):
    return mesh.http("GET", "/products/{}".format(product_id)).json()["quantity"]


def bill_count(mesh):
    return mesh.http("GET", "/bills").json()["page"]["total_items"]


def assert_error(response, status, code, mentions=None):
    assert response.status_code == status, response.text
    assert response.headers["Content-Type"].startswith("application/json"), response.headers
    body = response.json()
    assert body["error"] == code, body
    assert body["message"], body
    if mentions:
        assert mentions in body["message"], body


def test_health_names_every_service(mesh):
    """The core mesh serves bills (200); the events pipeline is not running here.
    (billing catches up first: the seeded bills' events leave at its first
    relay and are marked sent at the next, a second later.)"""
    # the required services up, every other declared one (contracts/services.py) down
    parts = {name: "up" if name in REQUIRED_SERVICES else "down" for name in RPC_SERVICES}
    expected = {"status": "degraded", "services": dict(parts, **{STREAMS: "unknown"}),
                "auth": AUTH_OFF_WARNING}  # the fixtures' AUTH=off, said
    response = mesh.http("GET", "/health")
    assert response.status_code == 200, response.text
    wait_for(lambda: mesh.http("GET", "/health").json() == expected, 5,
             "/health naming every part")


def test_seed_data_is_there(mesh):
    customers = mesh.http("GET", "/customers").json()
    assert [(c["name"], c["email"]) for c in customers["items"]] == [
        ("Mohamed", "med@gmail.com"), ("Imane", "imane@gmail.com"),
        ("Yassine", "yassine@gmail.com")]
    assert customers["page"] == {"number": 0, "size": 20, "total_items": 3, "total_pages": 1}
    products = mesh.http("GET", "/products").json()["items"]
    assert [(p["name"], p["price"], p["quantity"]) for p in products] == [
        ("Computer", "3200.00", 11), ("Printer", "1299.00", 10), ("Smart Phone", "5400.00", 8)]
    bills = mesh.http("GET", "/bills").json()["items"]
    assert [b["customer_id"] for b in bills] == [1, 2, 3]
    for bill in bills:  # customer n bought n of each product
        assert [(i["product_id"], i["quantity"]) for i in bill["items"]] == [
            (1, bill["customer_id"]), (2, bill["customer_id"]), (3, bill["customer_id"])]


def test_customers_page_and_size(mesh):
    page = mesh.http("GET", "/customers?page=1&size=2").json()
    assert [c["id"] for c in page["items"]] == [3]
    assert page["page"] == {"number": 1, "size": 2, "total_items": 3, "total_pages": 2}
    assert_error(mesh.http("GET", "/customers?size=101"), 400, "INVALID_INPUT", "size")
    assert_error(mesh.http("GET", "/customers?page=-1"), 400, "INVALID_INPUT", "page")
    assert_error(mesh.http("GET", "/products?size=abc"), 400, "INVALID_INPUT", "size")


def test_customer_lifecycle(mesh):
    created = mesh.http("POST", "/customers", json={"name": "Ali", "email": "ali@mail.com"})
    assert created.status_code == 201, created.text
    customer = created.json()
    assert customer["name"] == "Ali" and customer["email"] == "ali@mail.com"
    assert created.headers["Location"] == "/customers/{}".format(customer["id"])
    assert mesh.http("GET", created.headers["Location"]).json() == customer

    updated = mesh.http("PUT", "/customers/{}".format(customer["id"]),
                        json={"name": "Ali B", "email": "ali.b@mail.com"})
    assert updated.status_code == 200, updated.text
    assert updated.json() == {"id": customer["id"], "name": "Ali B", "email": "ali.b@mail.com"}

    deleted = mesh.http("DELETE", "/customers/{}".format(customer["id"]))
    assert deleted.status_code == 204, deleted.text
    assert_error(mesh.http("GET", "/customers/{}".format(customer["id"])),
                 404, "CUSTOMER_NOT_FOUND")


def test_customer_errors_change_nothing(mesh):
    before = mesh.http("GET", "/customers").json()
    assert_error(mesh.http("GET", "/customers/999"), 404, "CUSTOMER_NOT_FOUND", "999")
    assert_error(mesh.http("PUT", "/customers/999", json={"name": "X", "email": "x@mail.com"}),
                 404, "CUSTOMER_NOT_FOUND")
    assert_error(mesh.http("DELETE", "/customers/999"), 404, "CUSTOMER_NOT_FOUND")
    assert_error(mesh.http("POST", "/customers", json={"name": "Dup", "email": "med@gmail.com"}),
                 409, "EMAIL_TAKEN", "med@gmail.com")
    assert_error(mesh.http("PUT", "/customers/2", json={"name": "Imane", "email": "med@gmail.com"}),
                 409, "EMAIL_TAKEN")
    assert_error(mesh.http("POST", "/customers", json={"name": "X", "email": "not-an-address"}),
                 400, "INVALID_INPUT", "email")
    assert_error(mesh.http("POST", "/customers", json={"email": "x@mail.com"}),
                 400, "INVALID_INPUT", "name")
    assert_error(mesh.http("POST", "/customers", json={"name": 5, "email": "x@mail.com"}),
                 400, "INVALID_INPUT", "name")
    assert_error(mesh.http("POST", "/customers", data="{not json", headers=JSON_TYPE),
                 400, "INVALID_INPUT", "JSON")
    assert_error(mesh.http("DELETE", "/customers/1"), 409, "CUSTOMER_HAS_BILLS")
    assert mesh.http("GET", "/customers").json() == before


def test_product_lifecycle_and_errors(mesh):
    created = mesh.http("POST", "/products", json={"name": "Mouse", "price": "19.99", "quantity": 5})
    assert created.status_code == 201, created.text
    product = created.json()
    assert (product["price"], product["quantity"]) == ("19.99", 5)
    assert created.headers["Location"] == "/products/{}".format(product["id"])
    path = created.headers["Location"]
    before = mesh.http("GET", "/products").json()

    assert_error(mesh.http("POST", "/products", json={"name": "X", "price": -1, "quantity": 1}),
                 400, "INVALID_INPUT", "price")
    assert_error(mesh.http("POST", "/products", json={"name": "X", "price": "1.00", "quantity": -1}),
                 400, "INVALID_INPUT", "quantity")
    assert_error(mesh.http("POST", "/products", json={"name": "X", "price": "1.001", "quantity": 1}),
                 400, "INVALID_INPUT", "price")
    assert_error(mesh.http("POST", "/products", json={"name": "X", "price": "abc", "quantity": 1}),
                 400, "INVALID_INPUT", "price")
    assert_error(mesh.http("PUT", path, json={"name": "Mouse", "price": "1.00", "quantity": "many"}),
                 400, "INVALID_INPUT", "quantity")
    assert_error(mesh.http("DELETE", "/products/1"), 409, "PRODUCT_HAS_BILLS")
    assert_error(mesh.http("GET", "/products/999"), 404, "PRODUCT_NOT_FOUND")
    assert mesh.http("GET", "/products").json() == before

    updated = mesh.http("PUT", path, json={"name": "Mouse", "price": "17.5", "quantity": 7})
    assert updated.json() == {"id": product["id"], "name": "Mouse", "price": "17.50", "quantity": 7}
    assert mesh.http("DELETE", path).status_code == 204
    assert_error(mesh.http("GET", path), 404, "PRODUCT_NOT_FOUND")


def test_bill_views(mesh):
    bill = mesh.http("GET", "/bills/2").json()
    assert bill["customer_id"] == 2
    assert [(i["product_id"], i["quantity"], i["unit_price"]) for i in bill["items"]] == [
        (1, 2, "3200.00"), (2, 2, "1299.00"), (3, 2, "5400.00")]
    assert all("id" in item for item in bill["items"])

    full = mesh.http("GET", "/bills/2/full").json()
    assert full["customer"] == {"id": 2, "name": "Imane", "email": "imane@gmail.com"}
    assert [i["product"]["name"] for i in full["items"]] == ["Computer", "Printer", "Smart Phone"]
    assert [i["line_total"] for i in full["items"]] == ["6400.00", "2598.00", "10800.00"]
    assert full["total"] == "19798.00"
    assert full["billing_date"].endswith("+00:00")
    assert mesh.http("GET", "/fullBill/2").json() == full

    mine = mesh.http("GET", "/bills?customer_id=3").json()
    assert [b["id"] for b in mine["items"]] == [3] and mine["page"]["total_items"] == 1
    assert_error(mesh.http("GET", "/bills/999"), 404, "BILL_NOT_FOUND")
    assert_error(mesh.http("GET", "/bills/999/full"), 404, "BILL_NOT_FOUND")
    assert_error(mesh.http("GET", "/bills?customer_id=x"), 400, "INVALID_INPUT", "customer_id")


def test_create_bill_takes_stock_and_copies_prices(mesh):
    mouse = mesh.http("POST", "/products", json={"name": "Mouse", "price": "19.99", "quantity": 10}).json()
    created = mesh.http("POST", "/bills", json={
        "customer_id": 2, "items": [{"product_id": mouse["id"], "quantity": 3},
                                    {"product_id": 2, "quantity": 1}]})
    assert created.status_code == 201, created.text
    bill = created.json()
    assert created.headers["Location"] == "/bills/{}".format(bill["id"])
    assert bill["customer"]["id"] == 2
    assert [(i["product"]["id"], i["quantity"], i["unit_price"], i["line_total"])
            for i in bill["items"]] == [(mouse["id"], 3, "19.99", "59.97"), (2, 1, "1299.00", "1299.00")]
    assert bill["total"] == "1358.97"
    assert stock(mesh, mouse["id"]) == 7 and stock(mesh, 2) == 9

    # the bill keeps the price it was made with
    mesh.http("PUT", "/products/{}".format(mouse["id"]),
              json={"name": "Mouse", "price": "25.00", "quantity": 7})
    assert mesh.http("GET", "/bills/{}/full".format(bill["id"])).json()["total"] == "1358.97"


@pytest.mark.parametrize("body, status, code, field", [
    ({"customer_id": 1, "items": [{"product_id": 2, "quantity": 11}]}, 409, "INSUFFICIENT_STOCK", "Printer"),
    ({"customer_id": 1, "items": [{"product_id": 1, "quantity": 1},
                                  {"product_id": 3, "quantity": 9}]}, 409, "INSUFFICIENT_STOCK", "product 3"),
    ({"customer_id": 1, "items": []}, 400, "INVALID_INPUT", "items"),
    ({"customer_id": 1}, 400, "INVALID_INPUT", "items"),
    ({"items": [{"product_id": 1, "quantity": 1}]}, 400, "INVALID_INPUT", "customer_id"),
    ({"customer_id": "one", "items": [{"product_id": 1, "quantity": 1}]}, 400, "INVALID_INPUT", "customer_id"),
    ({"customer_id": 1, "items": [{"product_id": 1, "quantity": 0}]}, 400, "INVALID_INPUT", "quantity"),
    ({"customer_id": 1, "items": [{"product_id": 1, "quantity": -2}]}, 400, "INVALID_INPUT", "quantity"),
    ({"customer_id": 1, "items": [{"product_id": 1, "quantity": 1.5}]}, 400, "INVALID_INPUT", "quantity"),
    # a product listed twice is billed on one line: 6 + 6 computers, 11 in stock
    ({"customer_id": 1, "items": [{"product_id": 1, "quantity": 6},
                                  {"product_id": 1, "quantity": 6}]}, 409, "INSUFFICIENT_STOCK", "Computer"),
    ({"customer_id": 1, "items": [{"product_id": 1, "quantity": 1}], "extra": 1}, 400, "INVALID_INPUT", "extra"),
    ({"customer_id": 99, "items": [{"product_id": 1, "quantity": 1}]}, 404, "CUSTOMER_NOT_FOUND", "99"),
    ({"customer_id": 1, "items": [{"product_id": 1, "quantity": 1},
                                  {"product_id": 99, "quantity": 1}]}, 404, "PRODUCT_NOT_FOUND", "99"),
])
def test_failed_bill_changes_nothing(mesh, body, status, code, field):
    stocks = [stock(mesh, product_id) for product_id in (1, 2, 3)]
    bills = bill_count(mesh)
    assert_error(mesh.http("POST", "/bills", json=body), status, code, field)
    assert [stock(mesh, product_id) for product_id in (1, 2, 3)] == stocks
    assert bill_count(mesh) == bills


def test_malformed_bill_bodies(mesh):
    for data in ("{", "[1, 2]", "", "null"):
        assert_error(mesh.http("POST", "/bills", data=data, headers=JSON_TYPE),
                     400, "INVALID_INPUT", "body")
    assert bill_count(mesh) == 3


def test_unknown_routes_and_methods_answer_json(mesh):
    assert_error(mesh.http("GET", "/nowhere"), 404, "NOT_FOUND", "/nowhere")
    assert_error(mesh.http("GET", "/customers/abc"), 404, "NOT_FOUND")
    response = mesh.http("PATCH", "/customers/1")
    assert_error(response, 405, "METHOD_NOT_ALLOWED", "PATCH")
    assert "PUT" in response.headers["Allow"]


def test_money_and_dates_cross_rpc_as_themselves(mesh, rpc):
    """Decimal and datetime survive the AMQP hop (kombu's typed JSON)."""
    product = rpc.inventory.create_product({"name": "Pen", "price": Decimal("0.10"), "quantity": 30})
    assert product["price"] == Decimal("0.10") and isinstance(product["price"], Decimal)
    bill = rpc.billing.create_bill(1, [{"product_id": product["id"], "quantity": 3}])
    assert bill["total"] == Decimal("0.30")  # a float sum would give 0.30000000000000004
    assert bill["billing_date"].tzinfo is not None
