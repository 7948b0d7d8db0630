"""Load one page in headless Debian chromium and write what it showed as JSON.

Run by ``browser.open_page`` (and ``browser.open_live_page``) in a fresh
interpreter, because the tests run under eventlet's monkey-patching and
Playwright's sync API does not survive it (``Playwright.stop()`` never returns
under a patched hub). This script imports no eventlet and nothing of the
project: only Playwright from PyPI, driving the browser given by
``--chromium`` (never a downloaded one).

Every request that does not go to 127.0.0.1, localhost or [::1] is aborted
and listed under ``blocked``, so a page that works here works offline.

    python tests/integration/browser_check.py URL --chromium /usr/bin/chromium \\
        --report out.json [--screenshot page.png] [--wait-for-text TEXT] [--timeout 30]

With ``--serve`` the page stays open and the script talks JSON lines instead
of writing a report: once the page has loaded (and ``--wait-for-text`` /
``--wait-for-selector`` showed, or the wait timed out) it writes
``{"event": "loaded", ...}`` on stdout, then answers one command per line of
stdin until ``{"op": "close"}`` or the end of stdin::

    {"op": "watch", "id": "b7", "text": "#7", "selector": "tr[data-bill-id='7']"}
        -> {"event": "watching", "id": "b7"}, and once the page shows it (at once
           if it does already): {"event": "seen", "id": "b7", "seen_at": <epoch s>}
    {"op": "evaluate", "expression": "document.title"} -> {"event": "value", "value": ...}
    {"op": "screenshot", "path": "x.png", "full_page": false} -> {"event": "screenshot", "path"}
    {"op": "report"} -> {"event": "report", "report": {...the keys of --report's file...}}
    {"op": "close"} -> {"event": "closed"}

A watch matches text anywhere in the visible text of the page, or an element
matching ``selector`` that is visible (and holds ``text``, if both are
given). ``seen_at`` is the page's own clock (``Date.now()``) when the
mutation that showed it happened: an in-page MutationObserver checks after
every change. Every line carries ``t``, this script's ``time.time()`` when it
was written; a failed command answers ``{"event": "error", "op", "message"}``.
"""
import argparse
import contextlib
import json
import os
import select
import sys
import time
from urllib.parse import urlsplit

LOCAL_HOSTS = {"127.0.0.1", "localhost", "::1"}
TEXT_LIMIT = 20000  # characters of the page's visible text kept in the report
PUMP_MS = 20        # --serve: how long Playwright's events are served between looks at stdin


def is_local(url):
    """Whether a request may go out: loopback http(s)/ws(s), or a URL that
    reaches no network at all (data:, blob:, about:)."""
    parts = urlsplit(url)
    if parts.scheme in ("data", "blob", "about"):
        return True
    return parts.scheme in ("http", "https", "ws", "wss") and parts.hostname in LOCAL_HOSTS


def new_report(url, wait_for_text=None):
    return {"url": url, "final_url": None, "status": None, "title": None, "text": "",
            "text_truncated": False, "waited_for": wait_for_text, "found_text": None,
            "console_errors": [], "console": [], "blocked": [], "failed_requests": [],
            "requests": [], "screenshot": None, "error": None, "seconds": None}


@contextlib.contextmanager
def offline_page(chromium, report, timeout=30.0, viewport=(1280, 900)):
    """A new page of headless chromium whose requests outside this machine are
    aborted, and whose console messages, errors and requests go into ``report``."""
    from playwright.sync_api import sync_playwright

    args = ["--no-sandbox"] if os.geteuid() == 0 else []  # chromium's sandbox refuses root
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=chromium, headless=True, args=args)
        try:
            # service_workers="block": a worker's fetches would bypass the routing below
            context = browser.new_context(service_workers="block",
                                          viewport={"width": viewport[0], "height": viewport[1]})
            context.set_default_timeout(timeout * 1000)
            page = context.new_page()

            def route(route):
                request_url = route.request.url
                if is_local(request_url):
                    report["requests"].append(request_url)
                    route.continue_()
                else:
                    report["blocked"].append(request_url)
                    route.abort("blockedbyclient")

            def route_socket(socket):
                if is_local(socket.url):
                    socket.connect_to_server()
                else:
                    report["blocked"].append(socket.url)
                    socket.close()

            context.route("**/*", route)
            context.route_web_socket("**/*", route_socket)

            def on_console(message):
                entry = {"type": message.type, "text": message.text,
                         "location": message.location.get("url", "")}
                report["console"].append(entry)
                if message.type == "error" and not _is_blocked_echo(entry, report["blocked"]):
                    report["console_errors"].append(message.text)

            page.on("console", on_console)
            page.on("pageerror", lambda exc: report["console_errors"].append(
                "uncaught: {}".format(exc)))

            def on_request_failed(request):
                if request.url not in report["blocked"] and not _is_closing_stream(request):
                    report["failed_requests"].append({"url": request.url,
                                                      "failure": request.failure})

            def on_response(response):
                if response.status >= 400:
                    report["failed_requests"].append({"url": response.url,
                                                      "status": response.status})

            page.on("requestfailed", on_request_failed)
            page.on("response", on_response)
            yield page
        finally:
            browser.close()


def _is_closing_stream(request):
    """An EventSource still open when the page closes (or navigates) ends as
    net::ERR_ABORTED: the browser hung up, the stream did not fail."""
    return request.resource_type == "eventsource" and request.failure == "net::ERR_ABORTED"


def load(page, url, report, wait_for_text=None, wait_for_selector=None, timeout=30.0):
    """Go to ``url`` and wait until it is there; fills ``report``'s status,
    found_text, final_url and title. Playwright errors propagate."""
    from playwright.sync_api import Error as PlaywrightError

    response = page.goto(url, wait_until="load")
    report["status"] = response.status if response else None
    waits = []
    if wait_for_text:
        waits.append(page.get_by_text(wait_for_text).first)
    if wait_for_selector:
        waits.append(page.locator(wait_for_selector).first)
    if waits:
        report["found_text"] = True
        for locator in waits:
            try:
                locator.wait_for(state="visible")
            except PlaywrightError:
                report["found_text"] = False
    try:
        page.wait_for_load_state("networkidle", timeout=min(timeout, 10) * 1000)
    except PlaywrightError:
        pass  # something keeps polling: report what is there anyway
    report["final_url"] = page.url
    report["title"] = page.title()


def take_text(page, report):
    text = page.inner_text("body")
    report["text_truncated"] = len(text) > TEXT_LIMIT
    report["text"] = text[:TEXT_LIMIT]


def check(url, chromium, screenshot=None, wait_for_text=None, timeout=30.0,
          viewport=(1280, 900), full_page=False):
    from playwright.sync_api import Error as PlaywrightError

    report = new_report(url, wait_for_text)
    started = time.monotonic()
    with offline_page(chromium, report, timeout, viewport) as page:
        try:
            load(page, url, report, wait_for_text=wait_for_text, timeout=timeout)
            take_text(page, report)
            if screenshot:
                page.screenshot(path=screenshot, full_page=full_page)
                report["screenshot"] = os.path.abspath(screenshot)
        except PlaywrightError as exc:
            report["error"] = str(exc)
    report["seconds"] = round(time.monotonic() - started, 3)
    return report


def _is_blocked_echo(entry, blocked):
    """chromium logs 'Failed to load resource' for each request aborted above:
    that is already listed under ``blocked``, not a second fault of the page."""
    return entry["text"].startswith("Failed to load resource") and entry["location"] in blocked


# --serve ---------------------------------------------------------------------

# installed once per watch: remembers what is watched, checks after each DOM
# change and calls back (window.__browserCheckSeen) once per watch
WATCH_JS = """(spec) => {
  const state = window.__browserCheck || (window.__browserCheck = {watches: [], observer: null});
  const visible = (node) => !node.checkVisibility || node.checkVisibility();
  const holds = (node, text) => !text || (node.innerText || node.textContent || '').includes(text);
  const matches = (w) => {
    if (w.selector) {
      return Array.from(document.querySelectorAll(w.selector))
        .some((node) => visible(node) && holds(node, w.text));
    }
    return !!document.body && document.body.innerText.includes(w.text);
  };
  const check = () => {
    const at = Date.now() / 1000;
    state.watches = state.watches.filter((w) => {
      if (!matches(w)) return true;
      window.__browserCheckSeen(w.id, at);
      return false;
    });
    if (!state.watches.length && state.observer) {
      state.observer.disconnect();
      state.observer = null;
    }
  };
  state.watches.push(spec);
  if (!state.observer) {
    state.observer = new MutationObserver(check);
    state.observer.observe(document.documentElement, {subtree: true, childList: true,
                                                      characterData: true, attributes: true});
  }
  check();
}"""


def emit(event, **fields):
    line = dict(fields, event=event, t=round(time.time(), 4))
    sys.stdout.write(json.dumps(line) + "\n")
    sys.stdout.flush()


def serve(url, chromium, wait_for_text=None, wait_for_selector=None, timeout=30.0,
          viewport=(1280, 900)):
    """Keep the page open and answer the commands of stdin (see the module's doc)."""
    from playwright.sync_api import Error as PlaywrightError

    report = new_report(url, wait_for_text or wait_for_selector)
    started = time.monotonic()
    with offline_page(chromium, report, timeout, viewport) as page:
        page.expose_function("__browserCheckSeen",
                             lambda watch_id, at: emit("seen", id=watch_id, seen_at=at))
        try:
            load(page, url, report, wait_for_text=wait_for_text,
                 wait_for_selector=wait_for_selector, timeout=timeout)
        except PlaywrightError as exc:
            report["error"] = str(exc)
        report["seconds"] = round(time.monotonic() - started, 3)
        emit("loaded", **{key: report[key] for key in
                          ("url", "final_url", "status", "title", "found_text", "error",
                           "seconds")})
        if report["error"]:
            return 1

        def answer(command):
            op = command.get("op")
            if op == "watch":
                spec = {"id": str(command["id"]), "text": command.get("text"),
                        "selector": command.get("selector")}
                if not spec["text"] and not spec["selector"]:
                    raise ValueError("watch needs text or selector")
                emit("watching", id=spec["id"])
                page.evaluate(WATCH_JS, spec)   # may answer "seen" at once
            elif op == "evaluate":
                emit("value", value=page.evaluate(command["expression"]))
            elif op == "screenshot":
                page.screenshot(path=command["path"], full_page=bool(command.get("full_page")))
                report["screenshot"] = os.path.abspath(command["path"])
                emit("screenshot", path=report["screenshot"])
            elif op == "report":
                take_text(page, report)
                report["final_url"] = page.url
                report["title"] = page.title()
                report["seconds"] = round(time.monotonic() - started, 3)
                emit("report", report=report)
            elif op == "close":
                return False
            else:
                raise ValueError("unknown op {!r}".format(op))
            return True

        stdin = sys.stdin.fileno()
        pending = b""
        running = True
        while running:
            readable, _, _ = select.select([stdin], [], [], 0)
            if not readable:
                page.wait_for_timeout(PUMP_MS)  # Playwright delivers page events meanwhile
                continue
            chunk = os.read(stdin, 65536)
            if not chunk:
                break  # stdin closed: the test is gone
            pending += chunk
            while running and b"\n" in pending:
                line, pending = pending.split(b"\n", 1)
                if not line.strip():
                    continue
                command = {}
                try:
                    command = json.loads(line)
                    running = answer(command)
                except (PlaywrightError, ValueError, KeyError, TypeError) as exc:
                    emit("error", op=command.get("op") if isinstance(command, dict) else None,
                         message=str(exc))
    emit("closed")
    return 0


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("url")
    parser.add_argument("--chromium", required=True, help="the browser's executable")
    parser.add_argument("--report", help="where to write the JSON report (not with --serve)")
    parser.add_argument("--screenshot", help="PNG to write once the page is there")
    parser.add_argument("--full-page", action="store_true", help="screenshot the whole page")
    parser.add_argument("--wait-for-text", help="wait until this text is visible")
    parser.add_argument("--wait-for-selector", help="--serve: wait until an element matching "
                                                    "this CSS selector is visible")
    parser.add_argument("--timeout", type=float, default=30.0, help="seconds per step")
    parser.add_argument("--viewport", default="1280x900", help="WIDTHxHEIGHT")
    parser.add_argument("--serve", action="store_true",
                        help="keep the page open: commands on stdin, JSON lines on stdout")
    options = parser.parse_args(argv)
    width, height = (int(n) for n in options.viewport.lower().split("x"))
    if options.serve:
        return serve(options.url, options.chromium, wait_for_text=options.wait_for_text,
                     wait_for_selector=options.wait_for_selector, timeout=options.timeout,
                     viewport=(width, height))
    if not options.report:
        parser.error("--report is needed (or --serve)")
    report = check(options.url, options.chromium, screenshot=options.screenshot,
                   wait_for_text=options.wait_for_text, timeout=options.timeout,
                   viewport=(width, height), full_page=options.full_page)
    with open(options.report, "w", encoding="utf-8") as out:
        json.dump(report, out, indent=1)
    return 0


if __name__ == "__main__":
    sys.exit(main())
