"""GET /docs: the gateway's API reference page (ReDoc, vendored in
services/gateway_static/) renders /openapi.json in a real browser (Debian's
chromium, driven by Playwright in a process of its own: tests/integration/browser.py),
with no request leaving this machine."""
import os

import requests

from browser import open_page, screenshot


def test_docs_page_renders_the_openapi_document_offline(mesh, tmp_path):
    spec = requests.get(mesh.url + "/openapi.json", timeout=30)
    assert spec.status_code == 200, spec.text
    paths = sorted(spec.json()["paths"])
    bundle = requests.get(mesh.url + "/static/redoc.standalone.js", timeout=30)
    assert bundle.status_code == 200
    # an ES module: the browser runs it only with a JavaScript Content-Type
    assert bundle.headers["Content-Type"].split(";")[0] == "text/javascript", bundle.headers

    with open_page(mesh.url + "/docs", wait_for_text=paths[0]) as page:
        shot = screenshot(page, os.path.join(tmp_path, "docs.png"))
    assert page.status == 200
    assert page.title == "billing-mesh API"
    assert page.found_text, "{} never showed up: {}".format(paths[0], page.text[:2000])
    assert page.blocked == [], "the page reached outside this machine: {}".format(page.blocked)
    assert page.console_errors == [], page.console_errors
    assert page.failed_requests == [], page.failed_requests
    assert any(url.endswith("/openapi.json") for url in page.requests), page.requests
    assert os.path.getsize(shot) > 10_000  # a rendered page, not a blank one
