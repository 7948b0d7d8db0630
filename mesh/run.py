"""``make run``: start the whole mesh, wait until it is healthy, stop it cleanly.

    python -m mesh.run            # what `make run` calls
    INSTANCES=2 python -m mesh.run

Processes come from the ``Procfile`` and are run by honcho (one ``nameko run``
each, output prefixed with its name). On top of honcho this adds what a user
needs from one command: each process's output also goes to ``var/log/<name>.log``,
``INSTANCES`` instances of each domain service, and a line with the gateway's
URL once ``GET /health`` answers 200. Ctrl-C or SIGTERM stops everything.

When nothing answers at ``KAFKA_BOOTSTRAP_SERVERS``, it first starts the local
Tansu broker (memory only, ``var/log/kafka.log``) and stops it at the end.

A process that dies is not restarted, and does not take the others down (honcho
would): the failure stays visible in ``/health`` and ``/services``, and bringing
it back is the orchestrator's job (``restart:`` in docker-compose.yml).
"""
import os
import subprocess
import sys
import threading
import time

import requests
from honcho.environ import parse_procfile
from honcho.manager import Manager
from honcho.printer import Printer

from mesh.config import ROOT, load_config
from mesh.kafka import broker_answers, tansu_command

LOG_DIR = os.environ.get("MESH_LOG_DIR", os.path.join(ROOT, "var", "log"))
# the gateway binds the HTTP port; the aggregator's state is one consumer group
SINGLE_INSTANCE = {"gateway", "streams"}
HEALTH_WAIT_S = float(os.environ.get("MESH_HEALTH_WAIT", 120))


class LogFilePrinter(Printer):
    """Honcho's printer, also appending each process's lines to its log file."""

    def __init__(self, log_dir):
        super().__init__(sys.stdout)
        os.makedirs(log_dir, exist_ok=True)
        self.log_dir = log_dir
        self.files = {}

    def write(self, message):
        super().write(message)
        if message.name not in self.files:
            path = os.path.join(self.log_dir, "{}.log".format(message.name))
            self.files[message.name] = open(path, "a", buffering=1)
        data = message.data
        if isinstance(data, bytes):
            data = data.decode("utf-8", "replace")
        self.files[message.name].write(data)


class MeshManager(Manager):
    """honcho's Manager, except that one process stopping leaves the others
    running; everything stops on Ctrl-C or SIGTERM, or once all have stopped."""

    def _any_stopped(self):
        # honcho's loop terminates everything as soon as this is true
        return self._terminating and super()._any_stopped()


def gateway_url(config):
    address = str(config.get("WEB_SERVER_ADDRESS", "0.0.0.0:8000"))
    host, _, port = address.rpartition(":")
    if host in ("", "0.0.0.0", "::"):
        host = "127.0.0.1"
    return "http://{}:{}".format(host, port)


def wait_until_healthy(url, manager):
    deadline = time.time() + HEALTH_WAIT_S
    last = "no answer yet"
    while time.time() < deadline and not manager._terminating:
        try:
            response = requests.get(url + "/health", timeout=3)
            if response.status_code == 200:
                print("billing-mesh is up: {}  (logs in {}; Ctrl-C stops it)".format(
                    url, os.path.relpath(LOG_DIR, ROOT)), flush=True)
                return
            last = response.text
        except requests.RequestException as exc:
            last = str(exc)
        time.sleep(0.5)
    if not manager._terminating:
        print("billing-mesh did not become healthy within {:.0f} s ({}); see {}".format(
            HEALTH_WAIT_S, last, LOG_DIR), flush=True)
        manager.terminate()


def start_local_kafka(bootstrap):
    """Tansu at ``bootstrap`` if nothing answers there; the process, or None."""
    if broker_answers(bootstrap):
        return None
    os.makedirs(LOG_DIR, exist_ok=True)
    log = open(os.path.join(LOG_DIR, "kafka.log"), "ab")
    broker = subprocess.Popen(tansu_command(bootstrap), stdout=log, stderr=subprocess.STDOUT)
    deadline = time.time() + 30
    while not broker_answers(bootstrap):
        if broker.poll() is not None or time.time() > deadline:
            sys.exit("the local Kafka broker (Tansu) did not start at {}; see {}".format(
                bootstrap, log.name))
        time.sleep(0.1)
    print("started the local Kafka broker (Tansu, memory only) at {}".format(bootstrap),
          flush=True)
    return broker


def main():
    instances = int(os.environ.get("INSTANCES", "1"))
    config = load_config()
    broker = start_local_kafka(config["KAFKA_BOOTSTRAP_SERVERS"])
    with open(os.path.join(ROOT, "Procfile")) as handle:
        procfile = parse_procfile(handle.read())
    env = dict(os.environ)
    # the venv's `nameko` first, whatever PATH the user has
    env["PATH"] = os.path.dirname(sys.executable) + os.pathsep + env.get("PATH", "")
    env.setdefault("PYTHONUNBUFFERED", "1")

    manager = MeshManager(printer=LogFilePrinter(LOG_DIR))
    for name, entry in procfile.processes.items():
        count = 1 if name in SINGLE_INSTANCE else instances
        for number in range(1, count + 1):
            label = name if count == 1 else "{}.{}".format(name, number)
            manager.add_process(label, entry, env=env, cwd=ROOT)

    watcher = threading.Thread(target=wait_until_healthy,
                               args=(gateway_url(config), manager), daemon=True)
    watcher.start()
    try:
        manager.loop()
    finally:
        if broker is not None:
            broker.terminate()
            broker.wait(timeout=10)
    sys.exit(manager.returncode)


if __name__ == "__main__":
    main()
