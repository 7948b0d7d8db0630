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

A page that must stay open while the test acts (a live page: streams,
polling) is ``open_live_page``: the same browser process, kept running with
``--serve``, talking JSON lines (browser_check.py's doc lists them)::

    with open_live_page(url, wait_for_selector='body[data-state="loaded"]') as page:
        assert page.loaded["found_text"]
        before = time.time()
        bill = requests.post(url + "/bills", json=...).json()
        seen = page.wait_for(selector='tr[data-bill-id="{}"]'.format(bill["id"]), timeout=2)
        assert seen and seen["seen_at"] - before <= 2
        page.screenshot("var/console.png")
        report = page.report()      # a PageReport, as open_page yields

``wait_for`` answers the ``seen`` line (``seen_at``: the page's clock when the
DOM showed it) or None after ``timeout``; every line the browser wrote is in
``page.lines``, in order.
"""
import contextlib
import dataclasses
import importlib.util
import itertools
import json
import os
import queue
import shutil
import subprocess
import sys
import tempfile
import threading
import time

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


def _playwright_ready():
    """chromium's path, or the test fails saying what is missing."""
    chromium = chromium_path()
    if importlib.util.find_spec("playwright") is None:
        pytest.fail("Playwright is not installed in {}: run `{} -m pip install -r "
                    "requirements-dev.txt`".format(sys.prefix, sys.executable), pytrace=False)
    return chromium


def _page_report(raw):
    return PageReport(
        url=raw["url"], final_url=raw["final_url"], status=raw["status"],
        title=raw["title"], text=raw["text"], text_truncated=raw["text_truncated"],
        found_text=raw["found_text"], console_errors=raw["console_errors"],
        console=raw["console"], blocked=raw["blocked"],
        failed_requests=raw["failed_requests"], requests=raw["requests"],
        screenshot_path=raw["screenshot"], seconds=raw["seconds"])


@contextlib.contextmanager
def open_page(url, wait_for_text=None, timeout=30, viewport=(1280, 900), full_page=False):
    """Load ``url`` in headless chromium offline and yield a ``PageReport``.
    ``wait_for_text``: wait (up to ``timeout`` seconds) until that text is
    visible, for pages that render after loading (ReDoc does). A page that
    does not load at all fails the test."""
    chromium = _playwright_ready()
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
        yield _page_report(raw)


def screenshot(page, path):
    """Keep the page's screenshot (a PNG of what the browser showed) at
    ``path``, e.g. under the test's tmp_path, and return that path."""
    path = os.fspath(path)
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    shutil.copyfile(page.screenshot_path, path)
    return path


class LivePage:
    """A page kept open by ``browser_check.py --serve`` (see ``open_live_page``).
    Each method sends one command and waits for its answer; ``seen`` lines
    that come meanwhile are kept for ``wait_seen``."""

    def __init__(self, process, url, stderr_path, timeout):
        self.url = url
        self.timeout = timeout
        self.lines = []          # every line the browser wrote, in order
        self.loaded = None       # the "loaded" line
        self._process = process
        self._stderr_path = stderr_path
        self._queue = queue.Queue()
        self._seen = {}
        self._ids = itertools.count(1)
        # a thread (green under eventlet, as subprocess's pipes are) reads the
        # lines, so a wait can end after a timeout
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self):
        for raw in self._process.stdout:
            try:
                line = json.loads(raw)
            except ValueError:
                line = {"event": "noise", "text": raw.decode("utf-8", "replace")}
            self._queue.put(line)
        self._queue.put(None)

    def _next(self, wanted, timeout):
        """The next line whose event is in ``wanted``; None after ``timeout``."""
        deadline = time.monotonic() + timeout
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                return None
            try:
                line = self._queue.get(timeout=left)
            except queue.Empty:
                return None
            if line is None:
                self._fail("the browser process ended")
            self.lines.append(line)
            if line["event"] == "seen":
                self._seen[line["id"]] = line
            if line["event"] in wanted:
                return line

    def _fail(self, message):
        with open(self._stderr_path, encoding="utf-8", errors="replace") as f:
            stderr = f.read()[-4000:]
        pytest.fail("{} ({}): {}".format(message, self.url, stderr), pytrace=False)

    def _command(self, op, answer, timeout=None, **fields):
        if self._process.poll() is not None:
            self._fail("the browser process ended (exit {})".format(self._process.returncode))
        self._process.stdin.write((json.dumps(dict(fields, op=op)) + "\n").encode())
        self._process.stdin.flush()
        line = self._next({answer, "error"}, self.timeout if timeout is None else timeout)
        if line is None:
            self._fail("no answer to {} within {} s".format(op, self.timeout))
        if line["event"] == "error":
            pytest.fail("the browser could not {}: {}".format(op, line["message"]),
                        pytrace=False)
        return line

    def watch(self, text=None, selector=None):
        """Start watching for ``text`` (visible anywhere) or a visible element
        matching ``selector`` (holding ``text``, if both); returns the watch's id."""
        watch_id = "w{}".format(next(self._ids))
        self._command("watch", "watching", id=watch_id, text=text, selector=selector)
        return watch_id

    def wait_seen(self, watch_id, timeout):
        """The ``seen`` line of that watch (``seen_at``: the page's epoch
        seconds when it showed, ``t``: when the browser process reported it),
        or None if it did not show within ``timeout`` seconds from now."""
        deadline = time.monotonic() + timeout
        while watch_id not in self._seen:
            if self._next({"seen"}, deadline - time.monotonic()) is None:
                break
        return self._seen.get(watch_id)

    def wait_for(self, text=None, selector=None, timeout=None):
        """``watch`` then ``wait_seen``: the ``seen`` line, or None."""
        return self.wait_seen(self.watch(text=text, selector=selector),
                              self.timeout if timeout is None else timeout)

    def evaluate(self, expression):
        """The value of a JavaScript expression in the page (JSON-able)."""
        return self._command("evaluate", "value", expression=expression)["value"]

    def screenshot(self, path, full_page=False):
        """A PNG of what the page shows now, at ``path``; returns the path."""
        path = os.path.abspath(os.fspath(path))
        os.makedirs(os.path.dirname(path), exist_ok=True)
        return self._command("screenshot", "screenshot", path=path, full_page=full_page)["path"]

    def report(self):
        """A ``PageReport`` of everything so far (console, requests, blocked, text)."""
        return _page_report(self._command("report", "report")["report"])


@contextlib.contextmanager
def open_live_page(url, wait_for_text=None, wait_for_selector=None, timeout=30,
                   viewport=(1280, 800)):
    """Load ``url`` offline in headless chromium and keep it open: yields a
    ``LivePage`` once it has loaded (``page.loaded["found_text"]``: whether
    ``wait_for_text`` / ``wait_for_selector`` became visible within
    ``timeout``). A page that does not load at all fails the test."""
    chromium = _playwright_ready()
    with tempfile.TemporaryDirectory(prefix="live-page-") as folder:
        stderr_path = os.path.join(folder, "stderr.txt")
        command = [sys.executable, CHECK_SCRIPT, url, "--serve", "--chromium", chromium,
                   "--timeout", str(timeout), "--viewport", "{}x{}".format(*viewport)]
        if wait_for_text:
            command += ["--wait-for-text", wait_for_text]
        if wait_for_selector:
            command += ["--wait-for-selector", wait_for_selector]
        with open(stderr_path, "wb") as stderr:
            process = subprocess.Popen(command, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                       stderr=stderr, bufsize=-1)
        try:
            page = LivePage(process, url, stderr_path, timeout)
            page.loaded = page._next({"loaded"}, timeout * 2 + 30)
            if page.loaded is None:
                page._fail("the browser did not load the page in {:.0f} s".format(
                    timeout * 2 + 30))
            if page.loaded["error"]:
                pytest.fail("the browser could not load {}: {}".format(url, page.loaded["error"]),
                            pytrace=False)
            yield page
        finally:
            if process.poll() is None:
                try:
                    process.stdin.write(b'{"op": "close"}\n')
                    process.stdin.close()
                except OSError:
                    pass
                try:
                    process.wait(timeout=30)
                except subprocess.TimeoutExpired:
                    process.kill()
                    process.wait()
