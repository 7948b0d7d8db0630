"""Issue 24, point 7, through the real gateway: the two requests schemathesis
found valid by the gateway's own /openapi.json yet refused. Each is judged by
the document the gateway serves, as a generic tool judges it (jsonschema_rs,
formats on), then sent: a valid body is taken, an invalid one is a 400."""
import jsonschema_rs
import pytest


def body_schema(mesh, path, method):
    """The request body's schema of an operation, in the served document."""
    document = mesh.http("GET", "/openapi.json").json()
    content = document["paths"][path][method]["requestBody"]["content"]
    return jsonschema_rs.validator_for(
        dict(content["application/json"]["schema"], components=document["components"]),
        validate_formats=True)


def stock(mesh, product_id):
    return mesh.http("GET", "/products/{}".format(product_id)).json()["quantity"]


@pytest.mark.parametrize("email, valid", [
    ("9a@6jfaywxr.test", False),  # schemathesis's: a special-use domain
    ("9a@6jfaywxr.example", True),
])
def test_a_customer_body_is_taken_exactly_when_the_document_allows_it(mesh, email, valid):
    body = {"name": "Ali", "email": email}
    assert body_schema(mesh, "/customers", "post").is_valid(body) == valid
    answer = mesh.http("POST", "/customers", json=body)
    if valid:
        assert answer.status_code == 201, answer.text
        assert answer.json()["email"] == email
    else:
        assert answer.status_code == 400, answer.text
        assert answer.json() == {
            "error": "INVALID_INPUT",
            "message": "email: value is not a valid email address: The part after the "
                       "@-sign is a special-use or reserved name that cannot be used "
                       "with email."}
        assert len(mesh.http("GET", "/customers").json()["items"]) == 3


def test_a_bill_listing_one_product_twice_is_billed_on_one_line(mesh):
    body = {"customer_id": 1, "items": [{"product_id": 2, "quantity": 1},
                                        {"product_id": 1, "quantity": 1},
                                        {"product_id": 2, "quantity": 2}]}
    assert body_schema(mesh, "/bills", "post").is_valid(body)
    printers, computers = stock(mesh, 2), stock(mesh, 1)
    answer = mesh.http("POST", "/bills", json=body)
    assert answer.status_code == 201, answer.text
    bill = answer.json()
    assert [(item["product"]["id"], item["quantity"]) for item in bill["items"]] == [
        (2, 3), (1, 1)]
    assert (stock(mesh, 2), stock(mesh, 1)) == (printers - 3, computers - 1)
    # the bill as billing keeps it: one line per product
    kept = mesh.http("GET", answer.headers["Location"]).json()
    assert [(item["product_id"], item["quantity"]) for item in kept["items"]] == [(2, 3), (1, 1)]
