"""The whole mesh with each service on its own PostgreSQL database."""


def test_mesh_on_postgresql(start_mesh, mesh_config, postgres_db):
    mesh_config["DB_URIS"] = {key: postgres_db() for key in mesh_config["DB_URIS"]}
    assert all(uri.startswith("postgresql") for uri in mesh_config["DB_URIS"].values())
    mesh = start_mesh(mesh_config)

    assert mesh.http("GET", "/bills/3/full").json()["total"] == "29697.00"
    created = mesh.http("POST", "/bills", json={
        "customer_id": 3, "items": [{"product_id": 3, "quantity": 2}]})
    assert created.status_code == 201, created.text
    assert created.json()["total"] == "10800.00"
    assert mesh.http("GET", "/products/3").json()["quantity"] == 6

    refused = mesh.http("POST", "/bills", json={
        "customer_id": 3, "items": [{"product_id": 1, "quantity": 1},
                                    {"product_id": 3, "quantity": 7}]})
    assert refused.status_code == 409 and refused.json()["error"] == "INSUFFICIENT_STOCK"
    assert [p["quantity"] for p in mesh.http("GET", "/products").json()["items"]] == [11, 10, 6]
    assert mesh.http("GET", "/bills").json()["page"]["total_items"] == 4

    duplicate = mesh.http("POST", "/customers", json={"name": "X", "email": "imane@gmail.com"})
    assert duplicate.status_code == 409 and duplicate.json()["error"] == "EMAIL_TAKEN"
