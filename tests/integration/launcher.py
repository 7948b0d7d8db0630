"""``make run`` as a user runs it, for the tests that restart, kill and cut
things under it (tests/integration/test_day_two.py, test_cluster.py): the
launcher in a folder of its own, what billing holds against what analytics
show, and a load of bills through the gateway."""
import os
import random
import signal
import subprocess
import sys
import threading
import time
import uuid
from decimal import Decimal

import requests

from common.config import ROOT
from helpers import config_env, free_port, processes_with, wait_for
from tools.processes import command_line


class Launcher:
    """``make run`` (``python -m tools.run``) in a folder of its own, started
    again as often as a test likes, with the same databases, Kafka address and
    aggregator state; and every ``/health`` answer it gave, in order."""

    def __init__(self, mesh_config, tmp_path):
        self.marker = uuid.uuid4().hex
        self.url = "http://" + mesh_config["WEB_SERVER_ADDRESS"]
        self.db_uris = mesh_config["DB_URIS"]
        env = dict(os.environ, **config_env(mesh_config))
        env.update(MESH_LOG_DIR=str(tmp_path / "log"), MESH_DAY_TWO=self.marker,
                   KAFKA_BOOTSTRAP_SERVERS="127.0.0.1:{}".format(free_port()),
                   STREAMS_STATE_DIR=str(tmp_path / "streams"),
                   METRICS_BASE_PORT=str(random.randrange(20000, 28000, 100)))
        self.env = env
        self.log_dir = tmp_path / "log"
        self.process = None
        self.lines = []
        self.health = []  # (status, analytics equal billing then)

    @property
    def kafka(self):
        return self.env["KAFKA_BOOTSTRAP_SERVERS"]

    def start(self):
        self.lines = []
        self.process = subprocess.Popen([sys.executable, "-m", "tools.run"], cwd=ROOT,
                                        env=self.env, stdout=subprocess.PIPE,
                                        stderr=subprocess.STDOUT, text=True)
        threading.Thread(target=lambda: self.lines.extend(self.process.stdout),
                         daemon=True).start()
        self.health = []
        watching = threading.Event()
        threading.Thread(target=self._watch_health, args=(watching,), daemon=True).start()
        try:
            wait_for(lambda: any("billing-mesh is up" in line for line in self.lines)
                     or self.process.poll() is not None, 240, "the launcher saying ready")
            assert self.process.poll() is None, "".join(self.lines[-30:])
            self.ready_at = len(self.health)
        finally:
            watching.set()

    def _watch_health(self, stop):
        while not stop.is_set():
            try:
                answer = requests.get(self.url + "/health", timeout=5)
                body = answer.json()
                equal = body.get("status") == "ok" and same(*figures(self.url))
                self.health.append((body.get("status"), equal, body.get("progress")))
            except (requests.RequestException, ValueError):
                pass
            time.sleep(0.2)

    def pid_with(self, *args):
        """The pid of one of the launcher's processes whose command line holds
        every one of ``args`` (``"--storage-engine"``: the local broker), or None."""
        for pid in processes_with(self.marker):
            argv = command_line(pid)
            if all(arg in argv for arg in args):
                return pid
        return None

    def ctrl_c(self):
        self.process.send_signal(signal.SIGINT)
        self.process.wait(timeout=60)
        wait_for(lambda: processes_with(self.marker) == [], 20,
                 lambda: "mesh processes left after Ctrl-C: {}".format(
                     processes_with(self.marker)))

    def power_cut(self):
        for pid in processes_with(self.marker):
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        self.process.wait(timeout=10)
        wait_for(lambda: processes_with(self.marker) == [], 10, "every process killed")

    def stop(self):
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            self.process.wait(timeout=60)
        # what the launcher printed, beside the processes' logs (for a failure)
        (self.log_dir / "launcher.out").write_text("".join(self.lines))
        for pid in processes_with(self.marker):
            os.kill(pid, signal.SIGKILL)


def all_bills(url):
    """Every bill billing holds, through the gateway's pages."""
    bills, page = [], 0
    while True:
        answer = requests.get(url + "/bills?size=100&page={}".format(page), timeout=10).json()
        bills += answer["items"]
        if len(answer["items"]) < 100:
            return bills
        page += 1


def figures(url):
    """(what billing holds, what analytics show), each as (per customer revenue
    and bills, per product units and revenue, the windows' sum)."""
    customers, products = {}, {}
    for bill in all_bills(url):
        if bill["status"] != "active":
            continue
        total = sum(Decimal(item["unit_price"]) * item["quantity"] for item in bill["items"])
        revenue, count = customers.get(bill["customer_id"], (Decimal(0), 0))
        customers[bill["customer_id"]] = (revenue + total, count + 1)
        for item in bill["items"]:
            units, revenue = products.get(item["product_id"], (0, Decimal(0)))
            products[item["product_id"]] = (
                units + item["quantity"],
                revenue + Decimal(item["unit_price"]) * item["quantity"])
    billed = (customers, products, sum((revenue for revenue, _ in customers.values()),
                                       Decimal(0)))
    shown_customers = {s["customer_id"]: (Decimal(s["revenue"]), s["bills"]) for s in
                       requests.get(url + "/analytics/customers", timeout=10).json()["items"]
                       if s["bills"]}
    shown_products = {s["product_id"]: (s["units"], Decimal(s["revenue"])) for s in
                      requests.get(url + "/analytics/products", timeout=10).json()["items"]
                      if s["units"]}
    windows = requests.get(url + "/analytics/revenue?last=1000", timeout=10).json()["items"]
    shown = (shown_customers, shown_products,
             sum((Decimal(w["revenue"]) for w in windows), Decimal(0)))
    return billed, shown


def same(billed, shown):
    return billed == shown


def make_bills(url, count, cancel):
    made = []
    for n in range(count):
        answer = requests.post(url + "/bills", timeout=10, json={
            "customer_id": n % 3 + 1, "items": [{"product_id": n % 3 + 1, "quantity": 1}]})
        assert answer.status_code == 201, answer.text
        made.append(answer.json()["id"])
    for bill_id in made[:cancel]:
        answer = requests.post(url + "/bills/{}/cancel".format(bill_id), timeout=10)
        assert answer.status_code == 200, answer.text


class Load:
    """Bills made (and every fifth cancelled) through the gateway by
    ``clients`` threads, each one bill after another, until stopped; failures
    counted, not raised: the broker is being killed under it."""

    def __init__(self, url, clients=1):
        self.url, self.made, self.failed = url, 0, []
        self.bills, self.cancelled = [], []  # ids answered 201; of those, cancelled (200)
        self.answered_at = []  # (asked, answered), time.monotonic(), of each bill made
        # products with stock for any load (the seeded ones hold a few units)
        self.products = [requests.post(url + "/products", timeout=10, json={
            "name": "Load {}".format(n), "price": "{}.50".format(n), "quantity": 1_000_000,
        }).json()["id"] for n in (1, 2, 3)]
        self._stop = threading.Event()
        self._lock = threading.Lock()
        self._asked = 0
        self._threads = [threading.Thread(target=self._run, daemon=True)
                         for _ in range(clients)]

    def __enter__(self):
        for thread in self._threads:
            thread.start()
        return self

    def __exit__(self, *exc):
        self._stop.set()
        for thread in self._threads:
            thread.join(timeout=30)

    def first_asked_after(self, moment):
        """When the first bill asked for after ``moment`` was answered 201
        (``None`` if none was yet): the in-flight calls of a fault time out on
        their deadline whatever the mesh does meanwhile."""
        with self._lock:
            return min((answered for asked, answered in self.answered_at if asked > moment),
                       default=None)

    def _run(self):
        while not self._stop.is_set():
            with self._lock:
                self._asked += 1
                n = self._asked
            try:
                asked = time.monotonic()
                answer = requests.post(self.url + "/bills", timeout=10, json={
                    "customer_id": n % 3 + 1,
                    "items": [{"product_id": self.products[n % 3], "quantity": 1}]})
                if answer.status_code != 201:
                    self.failed.append(answer.status_code)
                    continue
                with self._lock:
                    self.made += 1
                    self.bills.append(answer.json()["id"])
                    self.answered_at.append((asked, time.monotonic()))
                if n % 5 == 0:
                    cancel = requests.post(
                        self.url + "/bills/{}/cancel".format(answer.json()["id"]), timeout=10)
                    if cancel.status_code == 200:
                        self.cancelled.append(answer.json()["id"])
            except requests.RequestException as exc:
                self.failed.append(repr(exc))
