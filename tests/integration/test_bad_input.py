"""Every class of bad input answers as documented (docs/http.md), never 500,
and nothing a refused request carries changes a database."""
import json

import pytest

from contracts.limits import MAX_ID

JSON_TYPE = {"Content-Type": "application/json"}
HUGE = "1" + "0" * 30


def state(mesh):
    """What a refused request must not change."""
    return (mesh.http("GET", "/customers?size=100").json(),
            mesh.http("GET", "/products?size=100").json(),
            mesh.http("GET", "/bills?size=100").json()["page"]["total_items"])


def error(response, status, code):
    assert response.status_code == status, response.text
    assert response.headers["Content-Type"].startswith("application/json")
    assert response.json()["error"] == code, response.text
    return response.json()["message"]


@pytest.mark.parametrize("path", [
    "/customers/" + HUGE, "/products/" + HUGE, "/bills/" + HUGE, "/bills/{}/full".format(HUGE),
    "/customers/{}".format(MAX_ID + 1), "/analytics/customers/" + HUGE])
def test_ids_beyond_any_column_are_not_found(mesh, path):
    error(mesh.http("GET", path), 404, "NOT_FOUND")


@pytest.mark.parametrize("query, field", [
    ("/customers?page=" + HUGE, "page"), ("/products?page=" + HUGE, "page"),
    ("/customers?size=" + HUGE, "size"), ("/bills?customer_id=" + HUGE, "customer_id"),
    ("/customers?page=-1", "page"), ("/products?size=0", "size"), ("/customers?page=x", "page"),
    ("/analytics/revenue?last=" + HUGE, "last")])
def test_query_values_out_of_range_are_400_naming_the_field(mesh, query, field):
    assert field in error(mesh.http("GET", query), 400, "INVALID_INPUT")


def test_unknown_query_parameters_are_ignored(mesh):
    assert mesh.http("GET", "/customers?size=2&colour=blue").json()["page"]["size"] == 2


@pytest.mark.parametrize("body, field", [
    ({"name": "Big", "price": "1.00", "quantity": 2**31}, "quantity"),
    ({"name": "Big", "price": "1234567890123.00", "quantity": 1}, "price"),
    ({"name": "Big", "price": "1.001", "quantity": 1}, "price"),
    ({"name": "Float", "price": 19.99, "quantity": 1}, "price"),  # money is text on the wire
    ({"name": "Nul\u0000", "price": "1.00", "quantity": 1}, "name"),
    ({"name": "Big", "price": "1.00", "quantity": 1, "colour": "blue"}, "colour"),
])
def test_product_fields_out_of_range_are_400(mesh, body, field):
    before = state(mesh)
    assert field in error(mesh.http("POST", "/products", json=body), 400, "INVALID_INPUT")
    assert state(mesh) == before


def test_whole_numbers_written_with_a_fraction_are_taken(mesh):
    created = mesh.http("POST", "/products", json={"name": "Pen", "price": "1.50", "quantity": 5.0})
    assert created.status_code == 201 and created.json()["quantity"] == 5


@pytest.mark.parametrize("body", [
    {"customer_id": HUGE, "items": [{"product_id": 1, "quantity": 1}]},
    {"customer_id": int(HUGE), "items": [{"product_id": 1, "quantity": 1}]},
    {"customer_id": 1, "items": [{"product_id": int(HUGE), "quantity": 1}]},
    {"customer_id": 1, "items": [{"product_id": 1, "quantity": int(HUGE)}]},
    # over MAX_ITEMS_PER_BILL lines (one product listed twice is taken: billed on one line)
    {"customer_id": 1, "items": [{"product_id": 1, "quantity": 1}] * 101},
])
def test_bills_out_of_range_change_nothing(mesh, body):
    before = state(mesh)
    error(mesh.http("POST", "/bills", json=body), 400, "INVALID_INPUT")
    assert state(mesh) == before


@pytest.mark.parametrize("data", [
    '{"name": "\\ud800", "email": "a@mail.com"}',  # a lone surrogate: no database stores it
    "[" * 5000 + "]" * 5000,  # nested deeper than the parser goes
    '{"name": "x", "email": ',
])
def test_bodies_that_are_not_json_objects_are_400(mesh, data):
    before = state(mesh)
    error(mesh.http("POST", "/customers", data=data, headers=JSON_TYPE), 400, "INVALID_INPUT")
    assert state(mesh) == before


@pytest.mark.parametrize("content_type", ["text/plain", "application/x-www-form-urlencoded",
                                          "application/xml"])
def test_bodies_that_are_not_application_json_are_415(mesh, content_type):
    body = json.dumps({"name": "Ali", "email": "ali@mail.com"})
    before = state(mesh)
    error(mesh.http("POST", "/customers", data=body, headers={"Content-Type": content_type}),
          415, "UNSUPPORTED_MEDIA_TYPE")
    assert state(mesh) == before


def test_a_body_without_content_type_is_415(mesh):
    body = json.dumps({"name": "Ali", "email": "ali@mail.com"}).encode()
    error(mesh.http("POST", "/customers", data=body), 415, "UNSUPPORTED_MEDIA_TYPE")
    ok = mesh.http("POST", "/customers", data=body,
                   headers={"Content-Type": "application/json; charset=utf-8"})
    assert ok.status_code == 201, ok.text


def test_a_body_over_the_limit_is_413(mesh):
    limit = 64 * 1024  # MAX_BODY_BYTES' default
    body = json.dumps({"name": "x" * limit, "email": "ali@mail.com"})
    before = state(mesh)
    error(mesh.http("POST", "/customers", data=body, headers=JSON_TYPE), 413, "PAYLOAD_TOO_LARGE")
    chunked = mesh.http("POST", "/customers", data=iter([body.encode()]), headers=JSON_TYPE)
    error(chunked, 413, "PAYLOAD_TOO_LARGE")  # no Content-Length: counted while read
    assert state(mesh) == before


def test_wrong_methods_are_405_with_allow(mesh):
    response = mesh.http("PATCH", "/customers/1")
    error(response, 405, "METHOD_NOT_ALLOWED")
    assert set(response.headers["Allow"].split(", ")) == {"GET", "HEAD", "PUT", "DELETE",
                                                         "OPTIONS"}


def test_head_works_where_get_does(mesh):
    head = mesh.http("HEAD", "/customers/1")
    assert head.status_code == 200 and head.content == b""
    assert head.headers["Content-Type"].startswith("application/json")
    assert mesh.http("HEAD", "/customers/999999").status_code == 404


def test_options_answers_allow(mesh):
    response = mesh.http("OPTIONS", "/bills")
    assert response.status_code == 204
    assert set(response.headers["Allow"].split(", ")) == {"GET", "HEAD", "POST", "OPTIONS"}
    assert "Access-Control-Allow-Origin" not in response.headers  # CORS is off by default
    error(mesh.http("OPTIONS", "/nowhere"), 404, "NOT_FOUND")


def test_a_chunked_body_is_read(mesh):
    body = json.dumps({"name": "Chunked", "email": "chunked@mail.com"}).encode()
    created = mesh.http("POST", "/customers", data=iter([body[:10], body[10:]]), headers=JSON_TYPE)
    assert created.status_code == 201, created.text


# CORS ------------------------------------------------------------------------------

APP = "http://127.0.0.1:3000"  # a browser app on another origin, allowed below


@pytest.fixture
def cors_mesh(start_mesh, mesh_config):
    mesh_config["CORS_ALLOWED_ORIGINS"] = APP + ", http://localhost:3000"
    return start_mesh(mesh_config)


def test_cors_preflight_and_answers_for_an_allowed_origin(cors_mesh):
    preflight = cors_mesh.http("OPTIONS", "/bills", headers={
        "Origin": APP, "Access-Control-Request-Method": "POST",
        "Access-Control-Request-Headers": "content-type, idempotency-key"})
    assert preflight.status_code == 204
    assert preflight.headers["Access-Control-Allow-Origin"] == APP
    assert "POST" in preflight.headers["Access-Control-Allow-Methods"]
    allowed = preflight.headers["Access-Control-Allow-Headers"].lower()
    assert "content-type" in allowed and "idempotency-key" in allowed
    assert int(preflight.headers["Access-Control-Max-Age"]) > 0

    answer = cors_mesh.http("GET", "/customers/1", headers={"Origin": APP})
    assert answer.headers["Access-Control-Allow-Origin"] == APP
    assert "X-Request-ID" in answer.headers["Access-Control-Expose-Headers"]
    assert "Origin" in answer.headers["Vary"]
    error_answer = cors_mesh.http("GET", "/customers/999999", headers={"Origin": APP})
    assert error_answer.headers["Access-Control-Allow-Origin"] == APP  # errors are readable too


def test_cors_refuses_other_origins(cors_mesh):
    other = "http://evil.example"
    preflight = cors_mesh.http("OPTIONS", "/bills", headers={
        "Origin": other, "Access-Control-Request-Method": "POST"})
    assert preflight.status_code == 204  # Allow, but no permission for that origin
    assert "Access-Control-Allow-Origin" not in preflight.headers
    assert "Access-Control-Allow-Origin" not in cors_mesh.http(
        "GET", "/customers/1", headers={"Origin": other}).headers


def test_cors_is_off_by_default(mesh):
    answer = mesh.http("GET", "/customers/1", headers={"Origin": APP})
    assert "Access-Control-Allow-Origin" not in answer.headers
