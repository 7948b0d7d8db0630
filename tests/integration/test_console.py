"""GET /: the live console (services/gateway_static/console.html, console.js,
console.css, smoothie.js vendored from npm) in a real browser (Debian's
chromium, kept open by tests/integration/browser.py's ``open_live_page``)
against the whole mesh, Kafka included: every service of the registry with
its instance count, the revenue chart fed by /analytics/stream, a bill posted
through the API on the page within 2 s (through /events/stream), no
JavaScript error and no request leaving this machine; with tokens checked, the
page opened with one in its address as ``make run`` prints it. The screenshot stays
in var/console.png, for a person to look at."""
import os
import time
from html.parser import HTMLParser

import pytest

from browser import open_live_page
from common.config import ROOT
from contracts.scopes import SCOPES
from contracts.services import NAMEKO_SERVICES

SERVICES = set(NAMEKO_SERVICES)  # every declared one (contracts/services.py)
LOADED = 'body[data-state="loaded"]'
SCREENSHOT = os.path.join(ROOT, "var", "console.png")
BILL_SHOWS_WITHIN = 2.0  # seconds from POST /bills until the page shows the bill

# what the registry panel shows: {service: [instances, status]}
REGISTRY_JS = """Object.fromEntries(Array.from(document.querySelectorAll('#services tr')).map(
  (row) => [row.dataset.service, [Number(row.querySelector('.instances').textContent),
                                  row.querySelector('.badge').textContent]]))"""
# billing's calls/s as the registry panel shows it ("1.5"; "\u2026" or "\u2013": none yet)
BILLING_RATE_JS = "document.querySelector('#services tr[data-service=\"billing\"] .rate').textContent"


def number(text):
    """A figure the page shows as text; 0 for a dash."""
    try:
        return float(text)
    except (TypeError, ValueError):
        return 0.0


def billing_calls(mesh):
    """billing's RPC calls as GET /services sums them (0 without metrics)."""
    for service in mesh.http("GET", "/services").json()["services"]:
        if service["name"] == "billing":
            return (service.get("metrics") or {}).get("calls") or 0
    return 0


@pytest.fixture
def guarded_console_mesh(issuer, console_mesh):
    """The mesh checking tokens, as ``make run`` runs it; this test's own calls
    carry a token with every scope."""
    console_mesh.session.headers["Authorization"] = "Bearer " + issuer.token(
        scope=" ".join(SCOPES))
    return console_mesh


def test_console_shows_the_mesh_live_and_offline(guarded_console_mesh, issuer):
    """Opened as ``make run``'s link opens it, a token after ``#token=``."""
    console_mesh = guarded_console_mesh
    answer = console_mesh.http("GET", "/services")
    assert answer.status_code == 200, answer.text
    expected = {s["name"]: [s["instances"], "UP"] for s in answer.json()["services"]}
    assert set(expected) == SERVICES, expected
    assert all(count >= 1 for count, _ in expected.values()), expected

    token = issuer.token(scope="bills:read customers:read products:read analytics:read",
                         exp=int(time.time()) + 600)
    with open_live_page(console_mesh.url + "/#token=" + token, wait_for_selector=LOADED,
                        viewport=(1280, 800)) as page:
        assert page.loaded["status"] == 200, page.loaded
        assert page.loaded["title"] == "billing-mesh console", page.loaded
        assert page.loaded["found_text"], "the console never finished loading: {}".format(
            page.report().text[:2000])
        # the token is kept for the tab, out of the address bar (and of screenshots)
        assert page.evaluate("window.location.hash") == ""

        # the registry: every service, up, with its instance count (polled every 2 s)
        shown = None
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            shown = page.evaluate(REGISTRY_JS)
            if shown == expected:
                break
            time.sleep(0.5)
        assert shown == expected, "registry panel {} != GET /services {}".format(shown, expected)

        # the chart follows /analytics/stream: one event a second, each plotted
        assert page.wait_for(selector='#revenue[data-windows-events="3"]', timeout=10), \
            "the revenue chart did not receive 3 stream events in 10 s"
        assert page.evaluate("Number(document.getElementById('revenue').dataset.points)") >= 3
        assert page.wait_for(selector='#windows-stream[data-state="live"]', timeout=5)
        assert page.wait_for(selector='#bills-stream[data-state="live"]', timeout=10), \
            "/events/stream never opened"

        # a bill made through the API shows within 2 s
        before = time.time()
        made = console_mesh.http("POST", "/bills", json={
            "customer_id": 1, "items": [{"product_id": 2, "quantity": 1}]})
        assert made.status_code == 201, made.text
        bill = made.json()
        row = '#bills tr[data-bill-id="{}"]'.format(bill["id"])
        seen = page.wait_for(selector=row, timeout=max(0.5, before + BILL_SHOWS_WITHIN + 1
                                                        - time.time()))
        assert seen, "bill {} not on the page {} s after POST /bills".format(
            bill["id"], BILL_SHOWS_WITHIN)
        assert seen["seen_at"] - before <= BILL_SHOWS_WITHIN, (
            "bill {} showed {:.2f} s after POST /bills".format(bill["id"], seen["seen_at"] - before))
        text = page.evaluate("document.querySelector({!r}).innerText".format(row))
        assert "#{}".format(bill["id"]) in text and bill["total"] in text, text
        top_row = page.evaluate("document.querySelector('#bills tr').dataset.billId")
        assert top_row == str(bill["id"]), "the newest bill is not on top"

        # cancelled through the API: its row is struck through, from bill_cancelled
        assert console_mesh.http("POST", "/bills/{}/cancel".format(bill["id"])).status_code == 200
        assert page.wait_for(selector=row + ".cancelled", timeout=BILL_SHOWS_WITHIN + 1), \
            "bill {} not shown cancelled after POST /bills/{}/cancel".format(bill["id"], bill["id"])

        # the aggregator counted it: the top 5 tables are filled
        assert page.wait_for(selector="#top-customers td", text="customer 1", timeout=10)
        assert page.wait_for(selector="#top-products td", text="product 2", timeout=10)

        # a bill a second for a few seconds, so the picture for a person shows
        # a chart that moves and call rates above zero
        calls_before = billing_calls(console_mesh)
        for product_id in (1, 2, 3, 1, 2):
            time.sleep(1)
            made = console_mesh.http("POST", "/bills", json={
                "customer_id": 2, "items": [{"product_id": product_id, "quantity": 1}]})
            assert made.status_code == 201, made.text
        assert page.wait_for(selector='#bills tr[data-bill-id="{}"]'.format(made.json()["id"]),
                             timeout=BILL_SHOWS_WITHIN + 1)
        # billing's call rate, from its instances' heartbeats (one every 2 s):
        # above zero on the page once /services counts the calls
        rate, counted = None, False
        deadline = time.monotonic() + 8
        while time.monotonic() < deadline:
            rate = page.evaluate(BILLING_RATE_JS)
            counted = counted or billing_calls(console_mesh) > calls_before
            if counted and number(rate) > 0:
                break
            time.sleep(0.5)
        if counted:
            assert number(rate) > 0, "billing's calls/s stayed {!r}".format(rate)
        else:
            print("GET /services counted no billing call: the page's call rate is not checked")
        page.screenshot(SCREENSHOT)
        report = page.report()

    assert report.blocked == [], "the page reached outside this machine: {}".format(report.blocked)
    assert report.console_errors == [], report.console_errors
    assert report.failed_requests == [], report.failed_requests
    asked = {url.split("?")[0].replace(console_mesh.url, "") for url in report.requests}
    for path in ("/static/console.css", "/static/console.js", "/static/smoothie.js",
                 "/services", "/bills", "/analytics/customers", "/analytics/products",
                 "/analytics/stream", "/events/stream"):
        assert path in asked, (path, sorted(asked))
    for name in SERVICES:
        assert name in report.text
    assert os.path.getsize(SCREENSHOT) > 20_000  # a drawn page, not a blank one


class PageFiles(HTMLParser):
    """What a page asks the gateway for as it loads: ``files`` (scripts,
    styles, pictures) and ``icons`` (``<link rel="icon">``)."""

    def __init__(self):
        super().__init__()
        self.files, self.icons = [], []

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        if tag == "link" and "icon" in (attrs.get("rel") or "").split():
            self.icons.append(attrs.get("href"))
        url = attrs.get("src") if tag in ("script", "img") else attrs.get("href")
        if tag in ("script", "img", "link") and url:
            self.files.append(url)


@pytest.mark.parametrize("path", ["/", "/docs"])
def test_pages_ask_for_no_missing_file(start_mesh, mesh_config, path):
    """A browser asks for a page's icon as it loads it: ``/favicon.ico`` (a 404,
    an error in the browser's console) unless the page declares one. Headless
    chromium asks for none, so the page is read here: it declares its icon,
    and every file it names is served."""
    mesh = start_mesh(mesh_config, "gateway")
    page = mesh.http("GET", path)
    assert page.status_code == 200, page.text
    found = PageFiles()
    found.feed(page.text)
    assert found.icons, "{} declares no icon: a browser asks for /favicon.ico".format(path)
    for url in found.files:
        answer = mesh.http("GET", url)
        assert answer.status_code == 200, (path, url, answer.status_code, answer.text)
    assert mesh.http("GET", found.icons[0]).headers["Content-Type"].startswith("image/")
