"""Page tests in headless Debian chromium (plain functions, no fixtures).

    from browser import open_page, screenshot

    with open_page(gateway_url + "/docs", wait_for_text="/bills") as page:
        assert page.blocked == [] and page.console_errors == []
        assert "/bills" in page.text
        screenshot(page, tmp_path / "docs.png")

The tests run under eventlet's monkey-patching (tests/conftest.py), and
Playwright's sync API does not survive it: a page loads, but
``Playwright.stop()`` never returns. So ``open_page`` drives the browser
from a fresh interpreter (``browser_check.py`` beside this file, run with
this interpreter, the venv's) and yields its report, a ``PageReport``. The
wait is green (eventlet patches ``subprocess``), so a gateway that the test
runs in this very process goes on answering the browser meanwhile.

Every request to anything but 127.0.0.1, localhost or [::1] is aborted and
listed in ``page.blocked``: a page that passes with ``blocked == []`` works
offline. Chromium comes from Debian (``bash scripts/ensure-chromium.sh``),
Playwright from PyPI (requirements-dev.txt); no browser is ever downloaded.
"""
import contextlib
import dataclasses
import importlib.util
import json
import os
import shutil
import subprocess
import sys
import tempfile

import pytest

CHECK_SCRIPT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "browser_check.py")


@dataclasses.dataclass
class PageReport:
    """What the browser showed, once the page had loaded (and ``wait_for_text``
    was visible, if given)."""
    url: str
    final_url: str
    status: int          # HTTP status of the page itself
    title: str
    text: str            # the body's visible text (innerText), at most 20,000 characters
    text_truncated: bool
    found_text: bool     # whether wait_for_text became visible (None: nothing waited for)
    console_errors: list  # console.error() lines, chromium's own errors, uncaught exceptions
    console: list        # every console message: {"type", "text", "location"}
    blocked: list        # URLs of requests aborted for leaving this machine
    failed_requests: list  # local requests that failed or answered 400 or more
    requests: list       # local URLs the page asked for, in order
    screenshot_path: str  # PNG of the viewport, inside a folder removed on leaving open_page
    seconds: float


def chromium_path():
    """Debian's chromium, or the test fails saying how to install it."""
    path = shutil.which("chromium")
    if path is None:
        pytest.fail("chromium is not installed: run `bash scripts/ensure-chromium.sh` "
                    "(Debian's chromium package)", pytrace=False)
    return path


@contextlib.contextmanager
def open_page(url, wait_for_text=None, timeout=30, viewport=(1280, 900), full_page=False):
    """Load ``url`` in headless chromium offline and yield a ``PageReport``.
    ``wait_for_text``: wait (up to ``timeout`` seconds) until that text is
    visible, for pages that render after loading (ReDoc does). A page that
    does not load at all fails the test."""
    chromium = chromium_path()
    if importlib.util.find_spec("playwright") is None:
        pytest.fail("Playwright is not installed in {}: run `{} -m pip install -r "
                    "requirements-dev.txt`".format(sys.prefix, sys.executable), pytrace=False)
    with tempfile.TemporaryDirectory(prefix="page-") as folder:
        report_path = os.path.join(folder, "report.json")
        png = os.path.join(folder, "page.png")
        command = [sys.executable, CHECK_SCRIPT, url, "--chromium", chromium,
                   "--report", report_path, "--screenshot", png, "--timeout", str(timeout),
                   "--viewport", "{}x{}".format(*viewport)]
        if wait_for_text:
            command += ["--wait-for-text", wait_for_text]
        if full_page:
            command.append("--full-page")
        try:
            run = subprocess.run(command, capture_output=True, text=True, timeout=timeout * 2 + 30)
        except subprocess.TimeoutExpired as exc:
            pytest.fail("the browser did not finish with {} in {:.0f} s".format(url, exc.timeout),
                        pytrace=False)
        if run.returncode != 0 or not os.path.exists(report_path):
            pytest.fail("the browser check of {} failed (exit {}):\n{}".format(
                url, run.returncode, (run.stdout + run.stderr)[-4000:]), pytrace=False)
        with open(report_path, encoding="utf-8") as f:
            raw = json.load(f)
        if raw["error"]:
            pytest.fail("the browser could not load {}: {}".format(url, raw["error"]),
                        pytrace=False)
        yield PageReport(
            url=raw["url"], final_url=raw["final_url"], status=raw["status"],
            title=raw["title"], text=raw["text"], text_truncated=raw["text_truncated"],
            found_text=raw["found_text"], console_errors=raw["console_errors"],
            console=raw["console"], blocked=raw["blocked"],
            failed_requests=raw["failed_requests"], requests=raw["requests"],
            screenshot_path=raw["screenshot"], seconds=raw["seconds"])


def screenshot(page, path):
    """Keep the page's screenshot (a PNG of what the browser showed) at
    ``path``, e.g. under the test's tmp_path, and return that path."""
    path = os.fspath(path)
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    shutil.copyfile(page.screenshot_path, path)
    return path
