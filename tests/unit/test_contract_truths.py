"""What the OpenAPI document says of a request body is what the edge checks
(issue 24, point 7): a body the document allows is taken, one it refuses is
refused, judged as a generic tool judges it (jsonschema_rs, schemathesis's
validator, formats on). And the endless streams carry their mark."""
import jsonschema_rs
import pytest
from hypothesis import HealthCheck, given, settings, strategies as st

from common.validation import validate
from contracts.errors import InsufficientStock, InvalidInput
from contracts.limits import MAX_QUANTITY
from contracts.scopes import PUBLIC
from mesh.http import http
from mesh.openapi import openapi_document
from services.customers_schemas import CustomerIn
from services.gateway import GatewayService
from services.gateway_schemas import BillBody, CustomerBody

DOCUMENT = openapi_document(GatewayService, title="billing-mesh", version="test")
EMAIL_SCHEMA = DOCUMENT["components"]["schemas"]["CustomerBody"]["properties"]["email"]


def document_validator(model):
    """The document's schema of ``model``, as a generic tool reads it."""
    schema = {"$ref": "#/components/schemas/" + model.__name__,
              "components": DOCUMENT["components"]}
    return jsonschema_rs.validator_for(schema, validate_formats=True)


def edge_takes(model, body):
    try:
        validate(model, body)
    except InvalidInput:
        return False
    return True


CUSTOMER = document_validator(CustomerBody)
BILL = document_validator(BillBody)

LOCAL_64 = "a" * 64
LABEL_63 = "b" * 63
# 254 characters: 64 + "@" + 63 + "." + 63 + "." + 61
LONGEST = "{}@{}.{}.{}".format(LOCAL_64, LABEL_63, LABEL_63, "c" * 61)

ADDRESSES = [
    # taken
    "ali@mail.com", "A.Li+bills@Mail.Example.COM", "{|}~!#$%&'*+/=?^_`-@x.io", "a@b.c",
    "a@a--b.com", "a@b.1a", "a@b.example", "a@b.tests", "a@b.testing", "a@localhost.com",
    "a@test.com", LOCAL_64 + "@x.com", "a@" + LABEL_63 + ".com", LONGEST,
    # refused: special-use domains, in any case
    "9a@6jfaywxr.test", "a@b.TEST", "a@b.invalid", "a@b.localhost", "a@b.local",
    "a@b.onion", "a@b.arpa", "a@x.y.Test",
    # refused: not an address this API takes
    "", "x", "a@b", "a@b.a1", "a@123.456", "a@-b.com", "a@b-.com", "a@ab--c.com",
    "a@xn--bcher-kva.com", "a..b@c.com", ".a@b.com", "a.@b.com", "a@b..com", "a@b.com.",
    " a@b.com", "a@b.com ", "a@b.com\n", "a b@c.com", '"a b"@c.com', "a@[127.0.0.1]",
    "josé@x.com", "a@bücher.com", "Ali <ali@mail.com>", "a@@b.com",
    "a" * 65 + "@x.com", "a@" + "b" * 64 + ".com", LONGEST + "c",
]


@pytest.mark.parametrize("address", ADDRESSES)
def test_the_document_and_the_edge_agree_on_each_address(address):
    body = {"name": "Ali", "email": address}
    assert CUSTOMER.is_valid(body) == edge_takes(CustomerBody, body), address


def test_an_address_at_a_special_use_domain_is_refused_by_the_document_too():
    """schemathesis generated it from ``format: email`` alone; the edge and the
    service refused it (400), with the same message."""
    body = {"name": "Ali", "email": "9a@6jfaywxr.test"}
    assert not CUSTOMER.is_valid(body)
    with pytest.raises(InvalidInput) as at_the_edge:
        validate(CustomerBody, body)
    with pytest.raises(InvalidInput) as in_the_service:
        validate(CustomerIn, body)
    assert str(at_the_edge.value) == str(in_the_service.value)
    assert "special-use or reserved name" in str(at_the_edge.value)
    assert EMAIL_SCHEMA["format"] == "email" and EMAIL_SCHEMA["maxLength"] == 254
    assert ".test" in EMAIL_SCHEMA["description"] and "pattern" in EMAIL_SCHEMA


@settings(max_examples=200, deadline=None, database=None,
          suppress_health_check=list(HealthCheck))
@given(st.data())
def test_every_address_the_pattern_matches_is_taken(data):
    """By the edge and by the service (email-validator): the document's
    pattern is no wider than they are."""
    assert "pattern" in EMAIL_SCHEMA
    address = data.draw(st.from_regex(EMAIL_SCHEMA["pattern"], fullmatch=True).filter(
        lambda value: len(value) <= EMAIL_SCHEMA["maxLength"]))
    body = {"name": "Ali", "email": address}
    assert CUSTOMER.is_valid(body)
    validate(CustomerBody, body)
    validate(CustomerIn, body)


def test_addresses_keep_their_normal_form():
    assert validate(CustomerBody, {"name": "Ali", "email": "Ali@Mail.COM"}).email == "Ali@mail.com"


def test_a_bill_listing_a_product_twice_is_valid_and_billed_on_one_line():
    body = {"customer_id": 1, "items": [{"product_id": 2, "quantity": 1},
                                        {"product_id": 3, "quantity": 2},
                                        {"product_id": 2, "quantity": 3}]}
    assert BILL.is_valid(body)
    bill = validate(BillBody, body)
    assert [(item.product_id, item.quantity) for item in bill.items] == [(2, 4), (3, 2)]
    assert "added up" in DOCUMENT["components"]["schemas"]["BillBody"]["description"]


def test_quantities_adding_up_beyond_any_stock_are_a_conflict_not_invalid():
    body = {"customer_id": 1, "items": [{"product_id": 2, "quantity": MAX_QUANTITY},
                                        {"product_id": 2, "quantity": 1}]}
    assert BILL.is_valid(body)
    with pytest.raises(InsufficientStock, match="product 2"):
        validate(BillBody, body)
    # a bad field is still a 400 first
    with pytest.raises(InvalidInput, match="customer_id"):
        validate(BillBody, dict(body, customer_id="one"))


def test_the_endless_streams_are_marked_and_nothing_else():
    marked = sorted((path, method) for path, operations in DOCUMENT["paths"].items()
                    for method, operation in operations.items()
                    if operation.get("x-endless-stream"))
    assert marked == [("/analytics/stream", "get"), ("/events/stream", "get")]
    assert all(operation["x-endless-stream"] is True
               for path, method in marked for operation in [DOCUMENT["paths"][path][method]])


def test_the_mark_comes_from_the_route_declaration():
    """A route answering ``text/event-stream`` is endless unless it says not."""

    class Streams:
        name = "streams"

        @http("GET", "/ticks", scope=PUBLIC, answers={200: "text/event-stream"})
        def ticks(self, request):
            """Ticks."""

        @http("GET", "/countdown", scope=PUBLIC, answers={200: "text/event-stream"}, endless=False)
        def countdown(self, request):
            """Ends by itself."""

        @http("GET", "/poll", scope=PUBLIC, answers={200: "text/plain"}, endless=True)
        def poll(self, request):
            """Never answers whole."""

    paths = openapi_document(Streams, title="t", version="0")["paths"]
    assert paths["/ticks"]["get"]["x-endless-stream"] is True
    assert "x-endless-stream" not in paths["/countdown"]["get"]
    assert paths["/poll"]["get"]["x-endless-stream"] is True
