"""docs/tutorial.md, as written: in a scratch clone of the repository, every
marked block of the page in order (``<!-- tutorial: ACTION -->`` above a
fenced block): the scaffold (``make new-service``), the edits, the new
service's tests, ``make run`` (``python -m tools.run``: the mesh with the new
service, on a vhost, ports and a Kafka broker of its own) and the calls of the
new routes. So the tutorial cannot rot, and the scaffold is checked end to end:
what it writes passes its own tests and runs in the mesh.

``make`` runs in the scratch clone with this venv (``VENV=``) and ``-o setup``:
nothing is installed or rebuilt. The processes run with the clone as their
working directory and ``PYTHONPATH``: the venv's editable install points at the
repository this test runs from, and the clone's modules must win (checked).
"""
import glob
import json
import os
import re
import shlex
import signal
import subprocess
import sys
import threading

import pytest
import requests

from common.config import ROOT
from helpers import free_port, wait_for

TUTORIAL = os.path.join(ROOT, "docs", "tutorial.md")
VENV = sys.prefix
# a marker, then a fenced block (``` or ~~~, as long as it opens)
BLOCK = re.compile(r"^<!-- tutorial: (.+?) -->\n(`{3,}|~{3,})[^\n]*\n(.*?)^\2[ \t]*$",
                   re.M | re.S)
MESH_UP_S = 90
SETTLE_S = 10  # how long a call's answer may take to follow an event


def tutorial_blocks(text):
    """``[(action words, block text)]`` of the marked blocks, in page order."""
    return [(shlex.split(action), body) for action, _, body in BLOCK.findall(text)]


def lines_of(path):
    with open(path, encoding="utf-8") as handle:
        return handle.read().splitlines(keepends=True)


def write_lines(path, lines):
    with open(path, "w", encoding="utf-8") as handle:
        handle.write("".join(lines))


def line_index(lines, text, path):
    for number, line in enumerate(lines):
        if text in line:
            return number
    raise AssertionError("docs/tutorial.md: no line of {} holds {!r}".format(path, text))


def one_path(scratch, pattern):
    found = glob.glob(os.path.join(scratch, pattern))
    assert len(found) == 1, "docs/tutorial.md: {} names {} files".format(pattern, len(found))
    return found[0]


def edit(scratch, words, body):
    """Apply one edit block: write, append, insert, replace, replace-section, delete."""
    action, pattern = words[0], words[1]
    if action == "write":
        path = os.path.join(scratch, pattern)
        os.makedirs(os.path.dirname(path), exist_ok=True)
        write_lines(path, [body])
        return
    path = one_path(scratch, pattern)
    if action == "delete":
        os.remove(path)
        return
    lines, block = lines_of(path), body.splitlines(keepends=True)
    if action == "append":
        text = "".join(lines).rstrip("\n")
        gap = "\n\n\n" if path.endswith(".py") else "\n\n"
        write_lines(path, [text + gap + body])
    elif action == "insert":
        where, anchor = words[2], words[3]
        at = line_index(lines, anchor, pattern) + (1 if where == "after" else 0)
        write_lines(path, lines[:at] + block + lines[at:])
    elif action == "replace":
        at = line_index(lines, words[2], pattern)
        write_lines(path, lines[:at] + block + lines[at + 1:])
    elif action == "replace-section":
        heading = words[2]
        start = next(n for n, line in enumerate(lines) if line.rstrip("\n") == heading)
        level = heading.split(" ")[0] + " "
        end = next((n for n in range(start + 1, len(lines)) if lines[n].startswith(level)),
                   len(lines))
        write_lines(path, lines[:start] + block + lines[end:])
    else:
        raise AssertionError("docs/tutorial.md: unknown action {!r}".format(action))


def makefile_recipe(scratch, target):
    with open(os.path.join(scratch, "Makefile")) as handle:
        return handle.read().split("\n{}:".format(target), 1)[1].split("\n\n", 1)[0]


class Walk:
    """The scratch clone, its environment, and the mesh it runs (if any)."""

    def __init__(self, scratch, env, url):
        self.scratch, self.env, self.url = scratch, env, url
        self.launcher, self.output, self.new_service = None, [], None
        self.token = None  # the one `make run` printed, for the calls' $TOKEN

    def command(self, line):
        words = shlex.split(line)
        if words[:2] == ["make", "run"]:
            return self.start_mesh()
        if words[0] == "make":
            if words[1] == "new-service":
                self.new_service = dict(word.split("=", 1) for word in words[2:])["NAME"]
            # the venv this test runs in, never built or installed again
            words = ["make", "VENV=" + VENV, "-o", "setup", "-o", "interpreter"] + words[1:]
        elif words[0].startswith(".venv/bin/"):
            words[0] = os.path.join(VENV, "bin", words[0][len(".venv/bin/"):])
        elif words[0] == "rm":  # shown beside a delete block: done by the block
            return
        done = subprocess.run(words, cwd=self.scratch, env=self.env, capture_output=True,
                              text=True, timeout=180)
        assert done.returncode == 0, "docs/tutorial.md: `{}` failed ({}):\n{}\n{}".format(
            line, done.returncode, done.stdout[-6000:], done.stderr[-4000:])
        if words[-2:] == ["new-service", "NAME=" + str(self.new_service)]:
            self.check_modules_come_from_the_clone()

    def check_modules_come_from_the_clone(self):
        """The new service and the scaffold are the clone's, not the editable
        install's (this repository's)."""
        script = ("import services.{}, tools.new_service, mesh.db\n"
                  "for m in (services.{}, tools.new_service, mesh.db): print(m.__file__)").format(
                      self.new_service, self.new_service)
        found = subprocess.run([sys.executable, "-c", script], cwd=self.scratch, env=self.env,
                               capture_output=True, text=True, timeout=60)
        paths = found.stdout.split()
        assert len(paths) == 3 and all(path.startswith(self.scratch + os.sep) for path in paths), (
            found.stdout + found.stderr)

    def start_mesh(self):
        """``make run``: its recipe is ``python -m tools.run``; run that until
        it says the mesh is up, with the new service up in ``/services`` (the
        gateway's operations routes follow the declarations: right after the
        scaffold, before the gateway knows anything else of the service)."""
        assert "$(BIN)/python -m tools.run" in makefile_recipe(self.scratch, "run")
        self.stop_mesh()
        self.output = []
        self.launcher = subprocess.Popen(
            [sys.executable, "-m", "tools.run"], cwd=self.scratch, env=self.env,
            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        threading.Thread(target=lambda out=self.output: out.extend(self.launcher.stdout),
                         daemon=True).start()
        wait_for(lambda: any("billing-mesh is up: " + self.url in line for line in self.output)
                 or self.launcher.poll() is not None, MESH_UP_S, "make run: the mesh up")
        assert self.launcher.poll() is None, "make run stopped:\n" + "".join(self.output[-80:])
        wait_for(lambda: any(line.startswith("export TOKEN=") for line in self.output), 5,
                 "make run printing a token")
        self.token = [line for line in self.output
                      if line.startswith("export TOKEN=")][-1].split("=", 1)[1].strip()

        def listed():
            found = {s["name"]: s for s in
                     requests.get(self.url + "/services", timeout=10).json()["services"]}
            entry = found.get(self.new_service) or {}
            # up (it answers describe), and its heartbeats heard: an instance listed
            return entry.get("status") == "up" and len(entry.get("instance_list", ())) == 1
        wait_for(listed, 10, "{} up in GET /services, with its instance".format(
            self.new_service))

    def stop_mesh(self):
        if self.launcher is not None and self.launcher.poll() is None:
            self.launcher.send_signal(signal.SIGTERM)
            try:
                self.launcher.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.launcher.kill()
        self.launcher = None

    def call(self, block):
        """``curl`` lines, each followed by ``# STATUS {expected fields}``."""
        lines = [line for line in block.splitlines() if line.strip()]
        assert self.launcher is not None, "docs/tutorial.md: a call block before `make run`"
        for request, expected in zip(lines[::2], lines[1::2]):
            status, _, fields = expected.lstrip("# ").partition(" ")
            fields = json.loads(fields) if fields else {}
            method, url, headers, data = curl(request)
            # the shell would expand it: the token `make run` printed
            headers = {key: value.replace("$TOKEN", self.token) for key, value in headers.items()}
            url = re.sub(r"^(http://)?localhost:8000", self.url, url)

            def answered(method=method, url=url, headers=headers, data=data,
                         status=int(status), fields=fields):
                answer = requests.request(method, url, headers=headers, data=data, timeout=10)
                body = answer.json()
                return (answer.status_code == status
                        and all(body.get(key) == value for key, value in fields.items()))
            if method == "GET":  # may follow an event: asked again for a while
                wait_for(answered, SETTLE_S, "docs/tutorial.md: {} -> {}".format(
                    request, expected))
            else:
                assert answered(), "docs/tutorial.md: {} did not answer {}".format(
                    request, expected)


def curl(line):
    """``(method, url, headers, data)`` of a ``curl`` command line."""
    words = shlex.split(line)
    assert words[0] == "curl", line
    method, url, headers, data = "GET", None, {}, None
    words = iter(words[1:])
    for word in words:
        if word == "-X":
            method = next(words)
        elif word == "-H":
            key, _, value = next(words).partition(":")
            headers[key.strip()] = value.strip()
        elif word == "-d":
            data = next(words)
            method = "POST" if method == "GET" else method
        else:
            url = word
    return method, url, headers, data


def test_the_blocks_are_marked_and_known():
    """The page's markers parse (the mesh test below takes them all)."""
    with open(TUTORIAL, encoding="utf-8") as handle:
        text = handle.read()
    blocks = tutorial_blocks(text)
    # a marker without its block right below would be skipped: none is
    assert len(blocks) == len(re.findall(r"^<!-- tutorial:", text, re.M))
    actions = [words[0] for words, _ in blocks]
    assert actions[0] == "run" and "call" in actions
    assert set(actions) <= {"run", "call", "write", "append", "insert", "replace",
                            "replace-section", "delete"}


@pytest.mark.timeout(240)
def test_the_tutorial_runs_as_written(tmp_path, rabbit_config):
    scratch = str(tmp_path / "billing-mesh")
    # the committed tree, as CI has it
    subprocess.run(["git", "clone", "-q", ROOT, scratch], check=True, timeout=60)
    port = free_port()
    env = {key: value for key, value in os.environ.items()
           if not key.endswith("_DB_URI") and key not in ("DATA_DIR", "METRICS_PORT")}
    env.update(PYTHONPATH=scratch, AMQP_URI=rabbit_config["AMQP_URI"],
               WEB_SERVER_ADDRESS="127.0.0.1:{}".format(port),
               # its own Kafka (the launcher starts Tansu there) and aggregator state
               KAFKA_BOOTSTRAP_SERVERS="127.0.0.1:{}".format(free_port()),
               STREAMS_STATE_DIR=str(tmp_path / "streams"), METRICS_BASE_PORT="0",
               MESH_LOG_DIR=str(tmp_path / "log"), PYTHONUNBUFFERED="1",
               # the local token issuer `make run` starts, on a port of its own
               AUTH_ISSUER="http://127.0.0.1:{}".format(free_port()),
               PATH=os.path.dirname(sys.executable) + os.pathsep + os.environ["PATH"])
    walk = Walk(scratch, env, "http://127.0.0.1:{}".format(port))
    with open(TUTORIAL, encoding="utf-8") as handle:
        blocks = tutorial_blocks(handle.read())
    try:
        for words, body in blocks:
            if words[0] == "run":
                for line in body.replace("\\\n", " ").splitlines():
                    if line.strip() and not line.startswith("#"):
                        walk.command(line)
            elif words[0] == "call":
                walk.call(body)
            else:
                edit(scratch, words, body)
        assert walk.new_service, "docs/tutorial.md never runs make new-service"
    finally:
        walk.stop_mesh()
        for log in sorted(glob.glob(str(tmp_path / "log" / "*.log"))):
            with open(log, errors="replace") as handle:
                print("--- {}\n{}".format(os.path.basename(log), handle.read()[-1500:]))
