"""Load one page in headless Debian chromium and write what it showed as JSON.

Run by ``browser.open_page`` in a fresh interpreter, because the tests run
under eventlet's monkey-patching and Playwright's sync API does not survive
it (``Playwright.stop()`` never returns under a patched hub). This script
imports no eventlet and nothing of the project: only Playwright from PyPI,
driving the browser given by ``--chromium`` (never a downloaded one).

Every request that does not go to 127.0.0.1, localhost or [::1] is aborted
and listed under ``blocked``, so a page that works here works offline.

    python tests/integration/browser_check.py URL --chromium /usr/bin/chromium \\
        --report out.json [--screenshot page.png] [--wait-for-text TEXT] [--timeout 30]
"""
import argparse
import json
import os
import sys
import time
from urllib.parse import urlsplit

LOCAL_HOSTS = {"127.0.0.1", "localhost", "::1"}
TEXT_LIMIT = 20000  # characters of the page's visible text kept in the report


def is_local(url):
    """Whether a request may go out: loopback http(s)/ws(s), or a URL that
    reaches no network at all (data:, blob:, about:)."""
    parts = urlsplit(url)
    if parts.scheme in ("data", "blob", "about"):
        return True
    return parts.scheme in ("http", "https", "ws", "wss") and parts.hostname in LOCAL_HOSTS


def check(url, chromium, screenshot=None, wait_for_text=None, timeout=30.0,
          viewport=(1280, 900), full_page=False):
    from playwright.sync_api import Error as PlaywrightError, sync_playwright

    report = {"url": url, "final_url": None, "status": None, "title": None, "text": "",
              "text_truncated": False, "waited_for": wait_for_text, "found_text": None,
              "console_errors": [], "console": [], "blocked": [], "failed_requests": [],
              "requests": [], "screenshot": None, "error": None, "seconds": None}
    started = time.monotonic()
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
                if request.url not in report["blocked"]:
                    report["failed_requests"].append({"url": request.url,
                                                      "failure": request.failure})

            def on_response(response):
                if response.status >= 400:
                    report["failed_requests"].append({"url": response.url,
                                                      "status": response.status})

            page.on("requestfailed", on_request_failed)
            page.on("response", on_response)
            try:
                response = page.goto(url, wait_until="load")
                report["status"] = response.status if response else None
                if wait_for_text:
                    locator = page.get_by_text(wait_for_text).first
                    try:
                        locator.wait_for(state="visible")
                        report["found_text"] = True
                    except PlaywrightError:
                        report["found_text"] = False
                try:
                    page.wait_for_load_state("networkidle", timeout=min(timeout, 10) * 1000)
                except PlaywrightError:
                    pass  # something keeps polling: report what is there anyway
                report["final_url"] = page.url
                report["title"] = page.title()
                text = page.inner_text("body")
                report["text_truncated"] = len(text) > TEXT_LIMIT
                report["text"] = text[:TEXT_LIMIT]
                if screenshot:
                    page.screenshot(path=screenshot, full_page=full_page)
                    report["screenshot"] = os.path.abspath(screenshot)
            except PlaywrightError as exc:
                report["error"] = str(exc)
        finally:
            browser.close()
    report["seconds"] = round(time.monotonic() - started, 3)
    return report


def _is_blocked_echo(entry, blocked):
    """chromium logs 'Failed to load resource' for each request aborted above:
    that is already listed under ``blocked``, not a second fault of the page."""
    return entry["text"].startswith("Failed to load resource") and entry["location"] in blocked


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("url")
    parser.add_argument("--chromium", required=True, help="the browser's executable")
    parser.add_argument("--report", required=True, help="where to write the JSON report")
    parser.add_argument("--screenshot", help="PNG to write once the page is there")
    parser.add_argument("--full-page", action="store_true", help="screenshot the whole page")
    parser.add_argument("--wait-for-text", help="wait until this text is visible")
    parser.add_argument("--timeout", type=float, default=30.0, help="seconds per step")
    parser.add_argument("--viewport", default="1280x900", help="WIDTHxHEIGHT")
    options = parser.parse_args(argv)
    width, height = (int(n) for n in options.viewport.lower().split("x"))
    report = check(options.url, options.chromium, screenshot=options.screenshot,
                   wait_for_text=options.wait_for_text, timeout=options.timeout,
                   viewport=(width, height), full_page=options.full_page)
    with open(options.report, "w", encoding="utf-8") as out:
        json.dump(report, out, indent=1)
    return 0


if __name__ == "__main__":
    sys.exit(main())
