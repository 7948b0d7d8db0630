"""``make chaos``: fault injection. Bills are made and cancelled through the
gateway by concurrent clients while each process of the mesh is SIGKILLed in
turn and started again; once the mesh has settled, the databases, the
analytics and Kafka must all agree with what the clients were answered.

    .venv/bin/python -m tools.chaos                    # what `make chaos` runs: 16 clients, 30 s
    .venv/bin/python -m tools.chaos --runs 3           # three runs, a fresh mesh each
    .venv/bin/python -m tools.chaos --duration 10 --clients 8    # the smoke test's size
    .venv/bin/python -m tools.chaos --no-cancel        # bill creation only
    .venv/bin/python -m tools.chaos --kill billing,gateway --seed 7 --keep
    .venv/bin/python -m tools.chaos --json chaos.json  # the figures, for a machine

The mesh is its own: a RabbitMQ vhost (management API:
``bash scripts/ensure-rabbitmq.sh --management``), a memory-only Tansu broker and
a gateway on free ports (never 8000 or 9092), SQLite files and logs in a scratch
folder (kept when a run fails, or with ``--keep``). Every process of the
``Procfile`` runs on its own (``nameko run ...``, ``python -m streams``), so any
one can be killed; they run with short settings so that the mesh settles fast
(``RPC_TIMEOUT=2``, ``RESERVATION_TTL=4``). One chaos mesh at a time (a lock).

A run:

1. start the mesh, wait until ``GET /health`` says ``ok``; make two products with
   a large known stock and a few customers;
2. ``--clients`` threads, each request on a new connection and with an
   ``X-Request-ID`` of its own: ``POST /bills`` (one or two products); a
   fraction (``--keyed``) carries an ``Idempotency-Key`` and is sent again with it
   while its answer is lost; a fraction of the bills answered 201 is cancelled
   (``POST /bills/{id}/cancel``, again while the answer is lost; some twice);
3. meanwhile, for ``--duration`` seconds: billing, inventory, customers, the
   Kafka bridge, the aggregator, analytics and the gateway, in turn, each at a random
   moment of its slot: SIGKILL, start again after 0.5-2 s, time until it serves
   again (an RPC consumer on its queue; the gateway's ``/health/live``; the
   aggregator committing again);
4. settle: every process up, ``/health`` ``ok``, no held stock reservation, the
   outbox empty, the aggregator's lag 0 and analytics equal to the database;
5. check, and print with their figures:

   a) stock: the stock each product lost is the units of its active bills,
      and no reservation is still held;
   b) bills vs answers: every bill answered 201 exists, each answered to one
      request; the bills no 201 answered are at most the requests whose answer
      was lost (503, timeout, connection reset), and the log of billing (or of
      the bridge) names, for each, a request whose answer was lost;
      cancellations likewise (a 200 is cancelled in the database; a cancelled
      bill's cancellation was answered 200 or lost);
   c) analytics (``GET /analytics/customers``, ``/analytics/products``) equal the
      billing database: revenue and bills per customer, units and revenue per
      product, of active bills;
   d) Kafka (``billing.bills`` from the start): every bill has exactly one
      distinct ``event_id`` of ``bill_created``, every cancelled bill one of
      ``bill_cancelled`` and an active one none; no event of an unknown bill
      (a repeated record of one event is allowed: delivery is at least once).

Under a failed check come its evidence (a bill whose stock reservation ended
in another state than the bill; a bill made for a request answered 503) and the
warning and error lines of the run's logs that name those requests.

Exit status 0 when every check of every run passes, 1 otherwise.
"""
import argparse
import collections
import contextlib
import dataclasses
import fcntl
import itertools
import json
import os
import random
import re
import shutil
import signal
import sqlite3
import subprocess
import sys
import tempfile
import threading
import time
from decimal import Decimal

import requests
import urllib3
from kafka import KafkaConsumer, TopicPartition
from kafka.admin import KafkaAdminClient, OffsetSpec

from common.config import ROOT, database_variable
from common.topology import declare_topology
from contracts.services import DATABASE_SERVICES, DECLARATIONS, RPC_SERVICES
from contracts.topics import AGGREGATOR_GROUP, BILLS_TOPIC, ensure_topics
from mesh.hub import mesh_environment
from mesh.registry import queue_consumers
from tools.local_kafka import KafkaNotStarted, LocalKafka, broker_answers
from tools.net import free_port, http_status
from tools.vhost import NoManagementApi, Vhost

# the processes killed, in this order (declared names: contracts.services)
# each process, then the broker losing everything (Tansu SIGKILLed and started
# again empty: the rebuilder gives billing's record again), then a power cut
# (every process and the broker SIGKILLed at once, all started again)
KAFKA, WHOLE_MESH = "kafka", "mesh"
KILL_ORDER = ("billing", "inventory", "customers", "kafka_bridge", "streams", "analytics",
              "gateway", KAFKA, WHOLE_MESH)
# short settings: a killed call fails within RPC_TIMEOUT, a reservation no bill
# confirms comes back after RESERVATION_TTL (which must be >= 2 * RPC_TIMEOUT)
# AUTH off: what chaos damages is processes and connections, not tokens (its
# load would otherwise need an issuer of its own); every log line says so
MESH_SETTINGS = {"RPC_TIMEOUT": "2", "RESERVATION_TTL": "4", "METRICS_PORT": "0",
                 "LOG_LEVEL": "INFO", "PYTHONUNBUFFERED": "1", "AUTH": "off",
                 "RATE_LIMIT_RATE": "0"}  # its load comes from one address
# a database URI from the user's shell would take this run's DATA_DIR's place
DATABASE_VARIABLES = {database_variable(name) for name in DATABASE_SERVICES}
RESERVED_PORTS = {8000, 9092}  # the user's own mesh and Kafka
BILL_CREATED, BILL_CANCELLED = "bill_created", "bill_cancelled"
ACTIVE, CANCELLED = "active", "cancelled"
# an answer that may have been lost on the way: the request may have taken effect
LOST = frozenset({"503", "timeout", "reset"})
# the request never reached the gateway (nothing listened): it took no effect
REFUSED = "refused"
PRODUCTS = [("Chaos widget", "2.50"), ("Chaos gadget", "19.99")]
INITIAL_STOCK = 10_000_000
CUSTOMERS = 4
CLIENT_TIMEOUT_S = 8.0  # well past the gateway's 503 after RPC_TIMEOUT
RETRIES = 3  # attempts of a keyed bill or a cancellation while the answer is lost
LOCK_PATH = os.path.join(tempfile.gettempdir(), "billing-mesh-chaos.lock")
# the lines naming a new bill with the request id it came with: billing's after
# each bill it made, and the bridge's for each bill_created it forwarded (a billing
# killed between its commit and its line still dispatched the event in the
# request's name, unless the outbox relay sent it later)
CREATED_LINES = (re.compile(r"\[([A-Za-z0-9._:-]+)\]: bill (\d+) created for customer"),
                 re.compile(r"\[([A-Za-z0-9._:-]+)\]: (?:bill_created of )?bill (\d+) \(event"))


# --- the processes --------------------------------------------------------------

class MeshFailed(RuntimeError):
    """The mesh could not be set up for a run (the message says why)."""


class Process:
    """One declared process (its Procfile line), started as its own process (not under a
    shell: ``exec env`` keeps the Procfile's variable assignments and leaves the
    pid the service's own, so SIGKILL hits the service). Output appended to
    ``log/<name>.log`` across restarts, each start marked."""

    def __init__(self, name, entry, env, log_dir):
        self.name, self.entry, self.env = name, entry, env
        self.log_path = os.path.join(log_dir, "{}.log".format(name))
        self.popen = None
        self.starts = 0
        self.killed = False  # by the killer: not an exit of its own

    def start(self):
        self.starts += 1
        with open(self.log_path, "ab") as output:
            output.write("=== chaos: start {} of {} at {} ===\n".format(
                self.starts, self.name, time.strftime("%H:%M:%S")).encode())
            output.flush()
            # its own session: a Ctrl-C of the tool reaches the tool only, which
            # then stops every process itself
            self.popen = subprocess.Popen(
                ["/bin/sh", "-c", "exec env " + self.entry], cwd=ROOT, env=self.env,
                stdout=output, stderr=subprocess.STDOUT, start_new_session=True)
        return self.popen.pid

    @property
    def pid(self):
        return self.popen.pid if self.popen else None

    def alive(self):
        return self.popen is not None and self.popen.poll() is None

    def kill(self):
        # the whole session: the aggregator's worker is a child of its own
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.popen.pid, signal.SIGKILL)
        self.popen.wait(timeout=30)

    def stop(self, timeout=20):
        if not self.alive():
            return
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.popen.pid, signal.SIGTERM)
        try:
            self.popen.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.kill()


def mesh_port():
    port = free_port()
    while port in RESERVED_PORTS:
        port = free_port()
    return port


class Mesh:
    """Every declared process in a vhost, Kafka, port and folder of its own."""

    def __init__(self, folder):
        self.folder = folder
        self.log_dir = os.path.join(folder, "log")
        os.makedirs(self.log_dir, exist_ok=True)
        self.vhost = Vhost("billing_mesh_chaos_")
        self.kafka = LocalKafka("127.0.0.1:{}".format(mesh_port()),
                                log_path=os.path.join(self.log_dir, "tansu.log"),
                                start_timeout=20)
        self.port = mesh_port()
        self.url = "http://127.0.0.1:{}".format(self.port)
        env = {key: value for key, value in os.environ.items()
               if key not in DATABASE_VARIABLES}
        env.update(MESH_SETTINGS)
        env.update(
            AMQP_URI=self.vhost.amqp_uri, WEB_SERVER_ADDRESS="127.0.0.1:{}".format(self.port),
            KAFKA_BOOTSTRAP_SERVERS=self.kafka.bootstrap,
            STREAMS_STATE_DIR=os.path.join(folder, "streams-state"),
            DATA_DIR=self.folder,  # every declared database, SQLite in this run's folder
            # this venv's nameko and python first, whatever PATH says
            PATH=os.path.dirname(sys.executable) + os.pathsep + os.environ.get("PATH", ""))
        self.env = mesh_environment(env)  # the mesh's hub, said explicitly
        self.processes = {service.name: Process(service.name, service.command, self.env,
                                                self.log_dir)
                          for service in DECLARATIONS}
        self.exits = []  # (name, pid, exit code, when): exits nobody asked for

    def db_path(self, service):
        return os.path.join(self.folder, "{}.db".format(service))

    def start(self, wait_s=120):
        try:
            self.vhost.__enter__()
        except NoManagementApi as exc:
            raise MeshFailed("chaos needs " + str(exc))
        try:
            self.kafka.start()
            ensure_topics(self.kafka.bootstrap, tansu=True)  # before any process, as make run
        except KafkaNotStarted as exc:
            raise MeshFailed(str(exc))
        try:
            declare_topology(self.vhost.amqp_uri)
        except OSError as exc:
            raise MeshFailed("RabbitMQ does not answer: {}".format(exc))
        for process in self.processes.values():
            process.start()
        ok, last = self.wait_health_ok(wait_s)
        if not ok:
            raise MeshFailed("the mesh did not become healthy in {:.0f} s ({}); see {}".format(
                wait_s, last, self.log_dir))

    def stop(self):
        for process in self.processes.values():
            if process.alive():
                process.popen.terminate()
        for process in self.processes.values():
            process.stop()
        self.kafka.kill()
        self.vhost.__exit__()

    def health(self):
        """``GET /health``'s body, or None without an answer."""
        status, body = http_status(self.url + "/health", timeout=5)
        if status is None:
            return None
        try:
            return json.loads(body)
        except ValueError:
            return None

    def wait_health_ok(self, seconds, times=2):
        deadline, in_a_row, last = time.monotonic() + seconds, 0, None
        while time.monotonic() < deadline:
            self.supervise()
            last = self.health()
            in_a_row = in_a_row + 1 if last and last.get("status") == "ok" else 0
            if in_a_row >= times:
                return True, last
            time.sleep(0.25)
        return False, last

    def supervise(self):
        """Start again any process that exited by itself (recorded: the table
        shows it). Killed ones are started by the killer."""
        for process in self.processes.values():
            if process.popen is not None and process.popen.poll() is not None \
                    and not process.killed:
                self.exits.append((process.name, process.pid, process.popen.returncode,
                                   time.monotonic()))
                print("  !! {} (pid {}) exited by itself with {}: started again".format(
                    process.name, process.pid, process.popen.returncode), flush=True)
                process.start()

    # is it serving again?

    def consumers(self, name):
        try:
            return queue_consumers(self.vhost.amqp_uri, "rpc-" + name)
        except Exception:  # noqa: BLE001  the broker is asked again
            return None

    def aggregator_offsets(self):
        """``(committed, end)`` of the aggregator's group on billing.bills, each
        summed over the topic's partitions."""
        admin = KafkaAdminClient(bootstrap_servers=self.kafka.bootstrap,
                                 request_timeout_ms=3000, bootstrap_timeout_ms=3000)
        try:
            [description] = admin.describe_topics([BILLS_TOPIC])
            partitions = [TopicPartition(BILLS_TOPIC, p["partition_index"])
                          for p in description["partitions"]]
            committed = admin.list_group_offsets({AGGREGATOR_GROUP: partitions}).get(
                AGGREGATOR_GROUP, {})
            ends = admin.list_partition_offsets({tp: OffsetSpec.LATEST for tp in partitions})
        finally:
            admin.close()
        return (sum(max(committed[tp].offset, 0) for tp in partitions if tp in committed),
                sum(ends[tp].offset for tp in partitions))

    def serving(self, name, since):
        """Whether ``name`` serves again: the gateway answers ``/health/live``; a
        nameko service consumes its RPC queue; the aggregator has committed past
        ``since`` (its committed offset when it was started), or has nothing to read."""
        if name == "gateway":
            return http_status(self.url + "/health/live", timeout=1)[0] == 200
        if name == "streams":
            try:
                committed, end = self.aggregator_offsets()
            except Exception:  # noqa: BLE001  Kafka is asked again
                return False
            return committed > since or committed >= end
        return (self.consumers(name) or 0) >= 1


# --- the clients ------------------------------------------------------------------

@dataclasses.dataclass
class Attempt:
    request_id: str  # the X-Request-ID sent
    started: float  # monotonic
    ended: float
    outcome: str  # "201", "503", ..., "timeout", "reset", "refused"
    answer: object = None  # the JSON answer, if any


@dataclasses.dataclass
class Op:
    """One request as the client means it; its attempts share an
    ``Idempotency-Key`` (keyed bills) or a bill (cancellations)."""
    kind: str  # "bill" | "cancel"
    number: int
    bill_id: int = None  # the bill answered (bills) or to cancel (cancellations)
    key: str = None
    repeat: bool = False  # a cancellation of a bill whose cancellation answered 200
    attempts: list = dataclasses.field(default_factory=list)

    @property
    def answered(self):
        """The attempt answered with success (201 bill, 200 cancellation), if any."""
        good = "201" if self.kind == "bill" else "200"
        return next((a for a in self.attempts if a.outcome == good), None)

    @property
    def lost(self):
        """No success, and some attempt's answer was lost (it may have taken effect)."""
        return self.answered is None and any(a.outcome in LOST for a in self.attempts)


def never_sent(exc):
    """A connection error that happened while connecting (nothing listened):
    the request never left. Anything else (a reset, a closed connection while
    waiting) may have come after the gateway read it."""
    todo, seen = [exc], set()
    while todo:
        error = todo.pop()
        if error is None or id(error) in seen:
            continue
        seen.add(id(error))
        if isinstance(error, (urllib3.exceptions.NewConnectionError, ConnectionRefusedError)):
            return True
        todo.extend([getattr(error, "reason", None), error.__cause__, error.__context__])
        todo.extend(arg for arg in getattr(error, "args", ()) if isinstance(arg, BaseException))
    return False


def local_session():
    """A requests session for the mesh on 127.0.0.1: no proxy from the environment."""
    session = requests.Session()
    session.trust_env = False
    return session


def send(method, url, body=None, headers=None, timeout=CLIENT_TIMEOUT_S):
    """``(outcome, JSON answer or None)``; each request on a connection of its
    own, so a gateway killed between two requests cannot turn a request that
    never left into a "reset" (a kept-alive connection would)."""
    with local_session() as session:
        try:
            response = session.request(method, url, json=body, headers=headers, timeout=timeout)
        except requests.ConnectTimeout:
            return REFUSED, None
        except requests.ReadTimeout:
            return "timeout", None
        except requests.ConnectionError as exc:
            return (REFUSED if never_sent(exc) else "reset"), None
        try:
            return str(response.status_code), response.json()
        except ValueError:
            return str(response.status_code), None


class Workload:
    """``clients`` threads making bills and cancelling some, until ``stop``."""

    def __init__(self, url, run, customers, products, clients, cancel_fraction, keyed_fraction,
                 pause_s, seed):
        self.url, self.run = url, run
        self.customers, self.products = customers, products
        self.clients = clients
        self.cancel_fraction, self.keyed_fraction = cancel_fraction, keyed_fraction
        self.pause_s, self.seed = pause_s, seed
        self.stop = threading.Event()
        self.ops = []  # list.append is atomic: no lock needed
        self.numbers = itertools.count(1)
        self.threads = []

    def start(self):
        for n in range(self.clients):
            thread = threading.Thread(target=self.client, args=(n,), daemon=True,
                                      name="chaos-client-{}".format(n))
            thread.start()
            self.threads.append(thread)

    def finish(self):
        self.stop.set()
        for thread in self.threads:
            thread.join(timeout=RETRIES * (CLIENT_TIMEOUT_S + 1) + 5)

    def client(self, n):
        rng = random.Random("{}-{}".format(self.seed, n))
        mine = []  # bills answered to this client, not yet cancelled
        while not self.stop.is_set():
            op = self.make_bill(rng)
            if op.answered:
                mine.append(op.answered.answer["id"])
            if mine and rng.random() < self.cancel_fraction:
                # half at once (racing the bill's own events), half an older bill
                bill_id = mine.pop() if rng.random() < 0.5 else mine.pop(rng.randrange(len(mine)))
                cancel = self.cancel(bill_id)
                if cancel.answered and rng.random() < 0.3:
                    self.cancel(bill_id, repeat=True)  # answers the same again
            outcomes = {a.outcome for a in op.attempts}
            time.sleep(0.2 if outcomes == {REFUSED} else self.pause_s)

    def attempt(self, op, method, path, body=None, headers=None):
        request_id = "chaos-r{}-{}{}-{}".format(self.run, op.kind[0], op.number,
                                                len(op.attempts) + 1)
        headers = dict(headers or {}, **{"X-Request-ID": request_id})
        started = time.monotonic()
        outcome, answer = send(method, self.url + path, body, headers)
        op.attempts.append(Attempt(request_id, started, time.monotonic(), outcome, answer))
        return outcome

    def make_bill(self, rng):
        op = Op("bill", next(self.numbers))
        if rng.random() < self.keyed_fraction:
            op.key = "chaos-r{}-k{}".format(self.run, op.number)
        products = rng.sample(self.products, rng.choice((1, 1, 2)))
        body = {"customer_id": rng.choice(self.customers),
                "items": [{"product_id": p, "quantity": rng.randint(1, 3)} for p in products]}
        headers = {"Idempotency-Key": op.key} if op.key else {}
        self.ops.append(op)
        for _ in range(RETRIES if op.key else 1):  # only a keyed request may be sent again
            outcome = self.attempt(op, "POST", "/bills", body, headers)
            if outcome not in LOST or self.stop.is_set():
                break
            time.sleep(0.5)
        if op.answered:
            op.bill_id = op.answered.answer["id"]
        return op

    def cancel(self, bill_id, repeat=False):
        op = Op("cancel", next(self.numbers), bill_id=bill_id, repeat=repeat)
        self.ops.append(op)
        for _ in range(RETRIES):  # cancelling is idempotent: sent again while lost
            outcome = self.attempt(op, "POST", "/bills/{}/cancel".format(bill_id))
            if outcome not in LOST or self.stop.is_set():
                break
            time.sleep(0.5)
        return op


# --- reading the state --------------------------------------------------------------

@dataclasses.dataclass
class Bill:
    id: int
    customer_id: int
    status: str
    items: list  # [(product_id, quantity, unit price in cents)]
    reservation_id: str = None

    @property
    def total_cents(self):
        return sum(quantity * cents for _, quantity, cents in self.items)


def connect(path):
    db = sqlite3.connect(path, timeout=30)
    db.execute("PRAGMA busy_timeout=30000")
    return contextlib.closing(db)


def read_billing(path):
    """``(bills, {idempotency key: bill id}, undispatched outbox events, has status)``;
    money is integer cents (``common.columns.MoneyType``). Until bills have a
    ``status`` column, every bill is active."""
    with connect(path) as db:
        columns = {row[1] for row in db.execute("PRAGMA table_info(bills)")}
        has_status = "status" in columns
        query = "SELECT id, customer_id, {}, reservation_id FROM bills".format(
            "status" if has_status else "'active'")
        bills = {bill_id: Bill(bill_id, customer_id, status or ACTIVE, [], reservation_id)
                 for bill_id, customer_id, status, reservation_id in db.execute(query)}
        for bill_id, product_id, quantity, cents in db.execute(
                "SELECT bill_id, product_id, quantity, unit_price FROM product_items ORDER BY id"):
            bills[bill_id].items.append((product_id, quantity, cents))
        keys = dict(db.execute("SELECT key, bill_id FROM idempotency_keys"))
        pending = db.execute(
            "SELECT count(*) FROM outbox_events WHERE dispatched_at IS NULL").fetchone()[0]
    return bills, keys, pending, has_status


def read_inventory(path):
    """``({product id: stock}, {reservation id: status})``."""
    with connect(path) as db:
        stock = dict(db.execute("SELECT id, quantity FROM products"))
        reservations = dict(db.execute("SELECT id, status FROM stock_reservations"))
    return stock, reservations


def read_analytics(url):
    """``({customer: (revenue, bills)}, {product: (units, revenue)})`` as the
    gateway answers them; raises when it does not."""
    with local_session() as session:
        customers = session.get(url + "/analytics/customers", timeout=10)
        products = session.get(url + "/analytics/products", timeout=10)
    customers.raise_for_status()
    products.raise_for_status()
    return ({item["customer_id"]: (Decimal(item["revenue"]), item["bills"])
             for item in customers.json()["items"]},
            {item["product_id"]: (item["units"], Decimal(item["revenue"]))
             for item in products.json()["items"]})


def read_bill_events(bootstrap, seconds=60):
    """Every record of billing.bills from the start, as JSON. Read until the end
    offset and a few empty polls more: Tansu may report the end short of the
    last batch (streams/app.py, work-around 3)."""
    consumer = KafkaConsumer(bootstrap_servers=bootstrap, group_id=None,
                             enable_auto_commit=False, auto_offset_reset="earliest",
                             fetch_max_wait_ms=100)
    try:
        partitions = [TopicPartition(BILLS_TOPIC, number)
                      for number in sorted(consumer.partitions_for_topic(BILLS_TOPIC))]
        consumer.assign(partitions)
        consumer.seek_to_beginning(*partitions)
        ends = consumer.end_offsets(partitions)
        events, quiet, deadline = [], 0, time.monotonic() + seconds

        def behind():
            return any(consumer.position(tp) < ends[tp] for tp in partitions)
        while (quiet < 4 or behind()) and time.monotonic() < deadline:
            batches = consumer.poll(timeout_ms=250)
            for records in batches.values():
                events.extend(json.loads(record.value) for record in records)
            quiet = 0 if batches else quiet + 1
    finally:
        consumer.close()
    return events


REQUEST_ID = re.compile(r"chaos-r\d+-[bc]\d+-\d+")


def log_evidence(log_dir, texts, limit=30):
    """The warning and error lines of the mesh's logs that name a request id
    found in ``texts`` (a failed check's problems and notes): where to look."""
    wanted = set(REQUEST_ID.findall(" ".join(texts)))
    found = []
    if not wanted:
        return found
    for name in sorted(os.listdir(log_dir)):
        with open(os.path.join(log_dir, name), errors="replace") as handle:
            for line in handle:
                if (" WARNING " in line or " ERROR " in line) and \
                        set(REQUEST_ID.findall(line)) & wanted:
                    found.append("{}: {}".format(name, line.strip()[:300]))
                    if len(found) >= limit:
                        return found
    return found


def bills_made_for(*log_paths):
    """``{bill id: [request ids]}`` from the lines of billing's and the bridge's
    logs that name a new bill (``CREATED_LINES``)."""
    made = {}
    for log_path in log_paths:
        with contextlib.suppress(FileNotFoundError), open(log_path, errors="replace") as handle:
            for line in handle:
                for pattern in CREATED_LINES:
                    match = pattern.search(line)
                    if match and match.group(1) != "-":
                        ids = made.setdefault(int(match.group(2)), [])
                        if match.group(1) not in ids:
                            ids.append(match.group(1))
    return made


# --- the checks (pure functions of what was read: tests/integration/test_chaos.py) ---

@dataclasses.dataclass
class Check:
    name: str
    passed: bool
    figures: str
    problems: list = dataclasses.field(default_factory=list)  # why it failed
    notes: list = dataclasses.field(default_factory=list)  # evidence, not failures

    def as_dict(self):
        return dataclasses.asdict(self)


def money_text(cents):
    return "{:.2f}".format(Decimal(cents) / 100)


# the state a bill's stock reservation ends in (services/inventory.py)
RESERVATION_OF = {ACTIVE: "confirmed", CANCELLED: "returned"}


def check_stock(products, initial, stock, bills, reservations, cancelled_by=None):
    """a) what each product lost is the units of its active bills; none held.
    The notes say which bills' reservations ended in another state than their
    bill's (confirmed: active, returned: cancelled; released: no bill), the
    evidence of where stock went; ``cancelled_by`` ``{bill id: request id}``
    names the cancellation."""
    problems, figures, notes = [], [], []
    cancelled_by = cancelled_by or {}
    billed = {bill.reservation_id for bill in bills.values() if bill.reservation_id}
    for bill in sorted(bills.values(), key=lambda bill: bill.id):
        if bill.reservation_id is None:
            continue  # seeded: no reservation
        state = reservations.get(bill.reservation_id)
        if state != RESERVATION_OF.get(bill.status):
            notes.append("bill {} is {}{} but its reservation {} is {}: {}".format(
                bill.id, bill.status, " (cancellation {})".format(cancelled_by[bill.id])
                if bill.id in cancelled_by else "", bill.reservation_id, state,
                ", ".join("product {} x{}".format(p, q) for p, q, _ in bill.items)))
    for reservation_id, state in sorted(reservations.items()):
        if reservation_id not in billed and state not in ("released", "returned", "held"):
            notes.append("reservation {} is {} but no bill was made with it".format(
                reservation_id, state))
    states = collections.Counter(reservations.values())
    for product_id in products:
        taken = initial[product_id] - stock[product_id]
        units = sum(quantity for bill in bills.values() if bill.status == ACTIVE
                    for pid, quantity, _ in bill.items if pid == product_id)
        figures.append("product {}: taken {} / active units {}".format(product_id, taken, units))
        if taken != units:
            problems.append("product {}: stock taken {} but active bills hold {} units ({:+d})"
                            .format(product_id, taken, units, taken - units))
    held = states.get("held", 0)
    figures.append("reservations {}".format(
        ", ".join("{} {}".format(n, state) for state, n in sorted(states.items()))))
    if held:
        problems.append("{} reservation(s) still held after settling".format(held))
    return Check("a) stock taken == units of active bills", not problems, "; ".join(figures),
                 problems, notes)


def check_bills(ops, bills, first_new_id, made_by, keys):
    """b) bills against the answers: every 201 stored and answered once; the
    bills no 201 answered at most the requests whose answer was lost, each
    made (billing's log says) by such a request; a keyed request has one bill."""
    problems, notes = [], []
    bill_ops = [op for op in ops if op.kind == "bill"]
    by_request = {a.request_id: op for op in bill_ops for a in op.attempts}
    answered = collections.defaultdict(list)  # bill id -> ops answered it
    for op in bill_ops:
        if op.answered:
            answered[op.answered.answer["id"]].append(op)
    for bill_id, its_ops in sorted(answered.items()):
        if bill_id not in bills:
            problems.append("bill {} answered 201 (request {}) is not in the database".format(
                bill_id, its_ops[0].answered.request_id))
        if len(its_ops) > 1:
            problems.append("bill {} answered 201 to {} different requests: {}".format(
                bill_id, len(its_ops), ", ".join(op.answered.request_id for op in its_ops)))
    lost = [op for op in bill_ops if op.lost]
    new = {bill_id for bill_id in bills if bill_id >= first_new_id}
    unanswered = sorted(new - set(answered))
    if len(unanswered) > len(lost):
        problems.append("{} bills no 201 answered, but only {} requests lost their answer".format(
            len(unanswered), len(lost)))
    # each bill that billing logged, by the request it came with
    by_op = collections.defaultdict(set)
    unattributed, after_503 = 0, 0
    for bill_id in unanswered:
        request_ids = made_by.get(bill_id, [])
        if not request_ids:
            unattributed += 1  # killed before its log line: nothing to say
            continue
        op = by_request.get(request_ids[0])
        if op is None:
            problems.append("bill {} made for request {}, which no client sent".format(
                bill_id, request_ids[0]))
            continue
        by_op[op.number].add(bill_id)
        attempt = next(a for a in op.attempts if a.request_id == request_ids[0])
        if op.answered is not None:
            problems.append("request {} answered 201 with bill {}, and bill {} was made for it "
                            "too (billed twice)".format(op.answered.request_id,
                                                        op.answered.answer["id"], bill_id))
        elif attempt.outcome not in LOST:
            problems.append("bill {} made for request {}, answered {} (not a lost answer)".format(
                bill_id, attempt.request_id, attempt.outcome))
        elif attempt.outcome == "503":
            after_503 += 1
            # its commit came before the 503: the answer died with its process
            notes.append("bill {} made for request {}, which was answered 503".format(
                bill_id, attempt.request_id))
    for number, its_bills in by_op.items():
        if len(its_bills) > 1:
            problems.append("request {} billed {} times: bills {}".format(
                number, len(its_bills), sorted(its_bills)))
    for op in bill_ops:
        if op.key and op.answered and keys.get(op.key) not in (None, op.answered.answer["id"]):
            problems.append("key {}: answered bill {}, stored for bill {}".format(
                op.key, op.answered.answer["id"], keys[op.key]))
    figures = ("{} requests, {} answered 201 ({} distinct, all stored: {}); {} bills no 201 "
               "answered <= {} requests whose answer was lost ({} unattributed, {} after a 503)"
               .format(len(bill_ops), sum(len(o) for o in answered.values()), len(answered),
                       "yes" if all(b in bills for b in answered) else "NO", len(unanswered),
                       len(lost), unattributed, after_503))
    return Check("b) bills vs answers", not problems, figures, problems, notes)


def check_cancels(ops, bills, has_status):
    """b') cancellations against their answers: a 200 says cancelled and is
    cancelled in the database, a repeat answers the same, only a bill answered
    201 is cancelled, and a cancelled bill's cancellation was answered 200 or
    lost; no other answer than 200, a lost one or refused."""
    problems = []
    cancel_ops = [op for op in ops if op.kind == "cancel"]
    first = {}  # bill id -> the first 200 answer
    for op in cancel_ops:
        if op.answered:
            answer = op.answered.answer or {}
            if answer.get("status") != CANCELLED or answer.get("id") != op.bill_id:
                problems.append("cancellation {} of bill {} answered 200 with {}".format(
                    op.answered.request_id, op.bill_id, answer))
            seen = first.setdefault(op.bill_id, answer)
            fields = ("id", "status", "cancelled_at")
            if op.repeat and {f: seen.get(f) for f in fields} != {f: answer.get(f) for f in fields}:
                problems.append("repeated cancellation {} of bill {}: {} after {}".format(
                    op.answered.request_id, op.bill_id, answer, seen))
        for attempt in op.attempts:
            if attempt.outcome not in LOST | {"200", REFUSED}:
                problems.append("cancellation {} of bill {} answered {}: {}".format(
                    attempt.request_id, op.bill_id, attempt.outcome, attempt.answer))
    cancelled = {bill_id for bill_id, bill in bills.items() if bill.status == CANCELLED}
    if has_status:
        for bill_id in sorted(set(first) - cancelled):
            problems.append("bill {} answered cancelled but {} in the database".format(
                bill_id, bills[bill_id].status if bill_id in bills else "missing"))
    asked = {op.bill_id for op in cancel_ops if op.answered or op.lost}
    for bill_id in sorted(cancelled - asked):
        problems.append("bill {} cancelled, but no cancellation of it was answered 200 or "
                        "lost".format(bill_id))
    lost = sum(1 for op in cancel_ops if op.lost)
    figures = ("{} cancellations ({} repeats), {} answered 200, {} lost; {} bills cancelled "
               "in the database{}".format(len(cancel_ops), sum(op.repeat for op in cancel_ops),
                                          sum(1 for op in cancel_ops if op.answered), lost,
                                          len(cancelled), "" if has_status else
                                          " (no status column: all active)"))
    return Check("b') cancellations vs answers", not problems, figures, problems)


def expected_analytics(bills):
    """``({customer: (revenue, bills)}, {product: (units, revenue)})`` of the
    active bills, as analytics should say."""
    customers = collections.defaultdict(lambda: [0, 0])
    products = collections.defaultdict(lambda: [0, 0])
    for bill in bills.values():
        if bill.status != ACTIVE:
            continue
        customers[bill.customer_id][0] += bill.total_cents
        customers[bill.customer_id][1] += 1
        for product_id, quantity, cents in bill.items:
            products[product_id][0] += quantity
            products[product_id][1] += quantity * cents
    return ({cid: (Decimal(cents) / 100, count) for cid, (cents, count) in customers.items()},
            {pid: (units, Decimal(cents) / 100) for pid, (units, cents) in products.items()})


def analytics_differences(bills, analytics):
    """What analytics say differently from the database (an entry at zero counts
    as absent)."""
    want_customers, want_products = expected_analytics(bills)
    have_customers, have_products = analytics
    differences = []
    for kind, want, have, zero in (("customer", want_customers, have_customers, (0, 0)),
                                   ("product", want_products, have_products, (0, 0))):
        for key in sorted(set(want) | set(have)):
            expected, said = want.get(key, zero), have.get(key, zero)
            if tuple(map(Decimal, expected)) != tuple(map(Decimal, said)):
                differences.append("{} {}: database {}, analytics {}".format(
                    kind, key, describe(kind, expected), describe(kind, said)))
    return differences


def describe(kind, figures):
    if kind == "customer":
        return "revenue {} in {} bills".format(*figures)
    return "{} units, revenue {}".format(*figures)


def check_analytics(bills, analytics):
    """c) analytics equal the billing database."""
    if analytics is None:
        return Check("c) analytics == billing database", False, "analytics did not answer",
                     ["GET /analytics/customers or /analytics/products did not answer"])
    problems = analytics_differences(bills, analytics)
    want_customers, want_products = expected_analytics(bills)
    figures = "{} customers, {} products compared; revenue {}".format(
        len(want_customers), len(want_products),
        sum((revenue for revenue, _ in want_customers.values()), Decimal(0)))
    return Check("c) analytics == billing database", not problems, figures, problems)


def check_kafka(bills, events):
    """d) on Kafka, per bill: one distinct bill_created event_id (carrying the
    bill as stored), one bill_cancelled if cancelled else none; nothing else."""
    problems = []
    ids = {BILL_CREATED: collections.defaultdict(set), BILL_CANCELLED: collections.defaultdict(set)}
    totals = {}
    other = 0
    for event in events:
        kind = event.get("type")
        if kind not in ids:
            other += 1
            continue
        bill = event["bill"]
        ids[kind][bill["id"]].add(event["event_id"])
        if kind == BILL_CREATED:
            totals[bill["id"]] = (bill["customer_id"], bill["total"])
    for bill_id, bill in sorted(bills.items()):
        created = len(ids[BILL_CREATED].get(bill_id, ()))
        cancelled = len(ids[BILL_CANCELLED].get(bill_id, ()))
        if created != 1:
            problems.append("bill {}: {} distinct bill_created event ids".format(bill_id, created))
        want = 1 if bill.status == CANCELLED else 0
        if cancelled != want:
            problems.append("bill {} ({}): {} distinct bill_cancelled event ids".format(
                bill_id, bill.status, cancelled))
        if bill_id in totals and totals[bill_id] != (bill.customer_id, money_text(bill.total_cents)):
            problems.append("bill {}: bill_created says customer {} total {}, the database "
                            "customer {} total {}".format(bill_id, *totals[bill_id],
                                                          bill.customer_id,
                                                          money_text(bill.total_cents)))
    for kind, by_bill in ids.items():
        for bill_id in sorted(set(by_bill) - set(bills)):
            problems.append("{} for bill {}, which the database does not have".format(
                kind, bill_id))
    distinct = sum(len(v) for by_bill in ids.values() for v in by_bill.values())
    figures = ("{} records: {} distinct events ({} bill_created, {} bill_cancelled), {} repeated "
               "records{}".format(len(events), distinct,
                                  sum(len(v) for v in ids[BILL_CREATED].values()),
                                  sum(len(v) for v in ids[BILL_CANCELLED].values()),
                                  len(events) - other - distinct,
                                  ", {} of other types".format(other) if other else ""))
    return Check("d) Kafka: each bill's events once by event_id", not problems, figures, problems)


# --- one run ----------------------------------------------------------------------

def log(started, text):
    print("  t+{:6.1f} s  {}".format(time.monotonic() - started, text), flush=True)


def setup_data(url, run, cancel):
    """Two products with INITIAL_STOCK and CUSTOMERS customers, made through
    the gateway; with cancellation, a cancellation of an unknown bill must be 404."""
    with local_session() as session:
        return make_data(session, url, run, cancel)


def make_data(session, url, run, cancel):
    products, customers = [], []
    for name, price in PRODUCTS:
        response = session.post(url + "/products", timeout=30, json={
            "name": name, "price": price, "quantity": INITIAL_STOCK})
        response.raise_for_status()
        products.append(response.json()["id"])
    stamp = "{}-{}".format(run, os.getpid())
    for n in range(CUSTOMERS):
        response = session.post(url + "/customers", timeout=30, json={
            "name": "Chaos {}".format(n), "email": "chaos{}-{}@example.com".format(n, stamp)})
        response.raise_for_status()
        customers.append(response.json()["id"])
    if cancel:
        response = session.post(url + "/bills/999999999/cancel", timeout=30)
        if response.status_code != 404 or response.json().get("error") != "BILL_NOT_FOUND":
            raise MeshFailed("POST /bills/999999999/cancel answered {} {}: expected 404 "
                             "BILL_NOT_FOUND (is the cancel route there? --no-cancel runs "
                             "without it)".format(response.status_code, response.text[:200]))
    return products, customers


def has_cancel_route(url):
    try:
        with local_session() as session:
            paths = session.get(url + "/openapi.json", timeout=10).json()["paths"]
    except (requests.RequestException, ValueError, KeyError):
        return False
    return any(path.startswith("/bills/") and path.endswith("/cancel") for path in paths)


def start_kafka_again(mesh):
    """The broker started again, empty, as ``make run`` starts it: the topics
    first, then SIGHUP to the aggregator (its client does not come through)."""
    mesh.kafka.start()
    ensure_topics(mesh.kafka.bootstrap, tansu=True)
    streams = mesh.processes["streams"]
    if streams.alive():
        streams.popen.send_signal(signal.SIGHUP)
    return mesh.kafka.process.pid


def mesh_serving(mesh):
    """After a power cut: the gateway answers, every RPC service consumes its
    queue, and Kafka answers."""
    return (mesh.serving("gateway", 0) and broker_answers(mesh.kafka.bootstrap)
            and all(mesh.serving(name, 0) for name in RPC_SERVICES))


def kill_everything_and_restart(mesh, name, rng, started):
    """``kafka``: the broker SIGKILLed and started again empty; ``mesh``: every
    process and the broker SIGKILLed at once, all started again. Then wait
    until it serves (the analytics are rebuilt later: the settle checks them)."""
    victims = [mesh.kafka] if name == KAFKA else [mesh.kafka] + list(mesh.processes.values())
    pid = mesh.kafka.process.pid
    killed_at = time.monotonic()
    for process in mesh.processes.values() if name == WHOLE_MESH else ():
        process.killed = True
        process.kill()
    mesh.kafka.kill()
    delay = rng.uniform(0.5, 2.0)
    time.sleep(delay)
    restarted_at = time.monotonic()
    new_pid = start_kafka_again(mesh)
    if name == WHOLE_MESH:
        declare_topology(mesh.vhost.amqp_uri)  # as make run does
        for process in mesh.processes.values():
            process.start()
            process.killed = False
    record = wait_serving(mesh, lambda: mesh_serving(mesh), name, pid, new_pid, started,
                          killed_at, restarted_at)
    log(started, "SIGKILL {} ({} processes) at t+{:.1f} s; started again after {:.1f} s; {}"
        .format(name, len(victims), killed_at - started, delay, serving_text(record)))
    return record


def wait_serving(mesh, serving, name, pid, new_pid, started, killed_at, restarted_at):
    """Wait (90 s at most) until ``serving()``; the kill's record, with the window
    of answers it may have caused: until RPC_TIMEOUT after it serves again."""
    deadline = restarted_at + 90
    while not serving() and time.monotonic() < deadline:
        mesh.supervise()
        time.sleep(0.1)
    healthy_at = time.monotonic() if serving() else None
    return {"process": name, "pid": pid, "new_pid": new_pid,
            "killed_at_s": killed_at - started, "restart_after_s": restarted_at - killed_at,
            "serving_after_start_s": None if healthy_at is None else healthy_at - restarted_at,
            "down_s": None if healthy_at is None else healthy_at - killed_at,
            "window": (killed_at, (healthy_at or time.monotonic())
                       + float(MESH_SETTINGS["RPC_TIMEOUT"]))}


def serving_text(record):
    if record["down_s"] is None:
        return "NOT serving after 90 s"
    return "serving {:.1f} s after its start, {:.1f} s down".format(
        record["serving_after_start_s"], record["down_s"])


def kill_and_restart(mesh, name, rng, started):
    """SIGKILL ``name``, start it again after 0.5-2 s, wait until it serves."""
    if name in (KAFKA, WHOLE_MESH):
        return kill_everything_and_restart(mesh, name, rng, started)
    process = mesh.processes[name]
    since = 0
    if name == "streams":
        with contextlib.suppress(Exception):
            since = mesh.aggregator_offsets()[0]
    pid = process.pid
    process.killed = True
    killed_at = time.monotonic()
    process.kill()
    delay = rng.uniform(0.5, 2.0)
    time.sleep(delay)
    if name == "streams":
        with contextlib.suppress(Exception):
            since = max(since, mesh.aggregator_offsets()[0])
    elif name != "gateway":
        # the broker dropped the dead consumer (the kernel closed its socket)
        noticed = time.monotonic() + 10
        while (mesh.consumers(name) or 0) > 0 and time.monotonic() < noticed:
            time.sleep(0.1)
    restarted_at = time.monotonic()
    new_pid = process.start()
    process.killed = False
    record = wait_serving(mesh, lambda: mesh.serving(name, since), name, pid, new_pid, started,
                          killed_at, restarted_at)
    log(started, "SIGKILL {} (pid {}) at t+{:.1f} s; started again after {:.1f} s (pid {}); {}"
        .format(name, pid, killed_at - started, delay, new_pid, serving_text(record)))
    return record


def settle(mesh, timeout_s):
    """Wait until everything has caught up; ``(seconds, {condition: held at the end})``."""
    started = time.monotonic()
    conditions, in_a_row = {}, 0
    while time.monotonic() - started < timeout_s:
        mesh.supervise()
        health = mesh.health() or {}
        bills, _, pending, _ = read_billing(mesh.db_path("billing"))
        _, reservations = read_inventory(mesh.db_path("inventory"))
        held = sum(1 for state in reservations.values() if state == "held")
        try:
            committed, end = mesh.aggregator_offsets()
        except Exception:  # noqa: BLE001
            committed, end = -1, 0
        try:
            analytics = read_analytics(mesh.url)
        except (requests.RequestException, ValueError, KeyError):
            analytics = None
        conditions = {
            "every process up": all(p.alive() for p in mesh.processes.values()),
            "/health ok": health.get("status") == "ok",
            "no held reservation": held == 0,
            "outbox empty": pending == 0,
            "aggregator lag 0": committed >= end,
            "analytics == database": analytics is not None
            and not analytics_differences(bills, analytics),
        }
        in_a_row = in_a_row + 1 if all(conditions.values()) else 0
        if in_a_row >= 2:
            break
        time.sleep(0.5)
    return time.monotonic() - started, conditions


def run_once(args, run, seed):
    rng = random.Random(seed)
    folder = tempfile.mkdtemp(prefix="billing-mesh-chaos-{}-".format(run), dir=args.folder)
    schedule = [name for _ in range(args.rounds) for name in args.kill]
    print("\n=== chaos run {}/{} (seed {}): {} clients, {:g} s, cancel {:.0%}, keyed {:.0%}, "
          "kills {}; {}".format(run, args.runs, seed, args.clients, args.duration,
                                args.cancel, args.keyed, " ".join(schedule) or "none",
                                " ".join("{}={}".format(k, v) for k, v in MESH_SETTINGS.items()
                                         if k in ("RPC_TIMEOUT", "RESERVATION_TTL"))),
          flush=True)
    print("    folder {}".format(folder), flush=True)
    mesh = Mesh(folder)
    result = {"run": run, "seed": seed, "folder": folder, "passed": False, "checks": [],
              "kills": [], "exits": []}
    workload = None
    try:
        began = time.monotonic()
        mesh.start()
        print("    mesh up in {:.1f} s: {} (vhost {}, Kafka {})".format(
            time.monotonic() - began, mesh.url, mesh.vhost.name, mesh.kafka.bootstrap),
            flush=True)
        cancel = args.cancel > 0
        if cancel and not has_cancel_route(mesh.url):
            raise MeshFailed("the gateway has no POST /bills/{id}/cancel route: run with "
                             "--no-cancel (creation only)")
        products, customers = setup_data(mesh.url, run, cancel)
        bills, _, _, _ = read_billing(mesh.db_path("billing"))
        first_new_id = max(bills, default=0) + 1
        initial, _ = read_inventory(mesh.db_path("inventory"))

        workload = Workload(mesh.url, run, customers, products, args.clients, args.cancel,
                            args.keyed, args.pause, seed)
        started = time.monotonic()
        workload.start()
        slot = args.duration / max(1, len(schedule))
        for n, name in enumerate(schedule):
            # a random moment of its slot; after a late restart (the aggregator
            # rebuilds its state first) a random moment soon after, not at once
            at = max(started + slot * (n + rng.uniform(0.1, 0.6)),
                     time.monotonic() + rng.uniform(0.3, 1.5))
            while time.monotonic() < at:
                mesh.supervise()
                time.sleep(0.05)
            result["kills"].append(kill_and_restart(mesh, name, rng, started))
        while time.monotonic() < started + args.duration:
            mesh.supervise()
            time.sleep(0.1)
        time.sleep(1.0)  # the last restart under load too
        workload.finish()
        load_s = time.monotonic() - started
        log(started, "load stopped: {} requests".format(
            sum(len(op.attempts) for op in workload.ops)))

        settle_s, conditions = settle(mesh, args.settle)
        log(started, "settled in {:.1f} s{}".format(settle_s, "" if all(conditions.values())
                                                    else ": NOT " + ", ".join(
                                                        k for k, v in conditions.items() if not v)))
        bills, keys, pending, has_status = read_billing(mesh.db_path("billing"))
        stock, reservations = read_inventory(mesh.db_path("inventory"))
        try:
            analytics = read_analytics(mesh.url)
        except (requests.RequestException, ValueError, KeyError):
            analytics = None
        events = read_bill_events(mesh.kafka.bootstrap)
        made_by = bills_made_for(mesh.processes["billing"].log_path,
                                 mesh.processes["kafka_bridge"].log_path)
        cancelled_by = {op.bill_id: (op.answered or op.attempts[-1]).request_id
                        for op in workload.ops if op.kind == "cancel" and not op.repeat}
        checks = [check_stock(products, initial, stock, bills, reservations, cancelled_by),
                  check_bills(workload.ops, bills, first_new_id, made_by, keys)]
        if cancel:
            checks.append(check_cancels(workload.ops, bills, has_status))
        checks += [check_analytics(bills, analytics), check_kafka(bills, events)]
        result.update(
            checks=[check.as_dict() for check in checks],
            passed=all(check.passed for check in checks),
            settled=all(conditions.values()), settle_s=settle_s, conditions=conditions,
            load_s=load_s, requests=request_figures(workload.ops),
            bills=len(bills), new_bills=sum(1 for b in bills if b >= first_new_id),
            cancelled=sum(1 for b in bills.values() if b.status == CANCELLED),
            has_status=has_status)
        failed = [text for check in checks for text in check.problems + check.notes]
        result["evidence"] = log_evidence(mesh.log_dir, failed)
        for kill in result["kills"]:
            kill["answers_while_down"] = outcomes_between(workload.ops, *kill.pop("window"))
        result["per_process"] = per_process(result["kills"])
        print_report(result, mesh)
    except MeshFailed as exc:
        result["error"] = str(exc)
        print("    chaos run {} could not run: {}".format(run, exc), flush=True)
    finally:
        # the clients stop first, then the mesh (a client still waiting fails
        # fast once the gateway is gone)
        if workload is not None:
            workload.stop.set()
        mesh.stop()
        if workload is not None:
            workload.finish()
        result["exits"] = [{"process": name, "pid": pid, "code": code}
                           for name, pid, code, _ in mesh.exits]
    if result["passed"] and not args.keep:
        shutil.rmtree(folder, ignore_errors=True)
    else:
        print("    logs and databases kept in {}".format(folder), flush=True)
    return result


def request_figures(ops):
    figures = {}
    for kind in ("bill", "cancel"):
        mine = [op for op in ops if op.kind == kind]
        attempts = collections.Counter(a.outcome for op in mine for a in op.attempts)
        figures[kind] = {"requests": len(mine), "attempts": sum(attempts.values()),
                         "answered": sum(1 for op in mine if op.answered),
                         "lost": sum(1 for op in mine if op.lost),
                         "outcomes": dict(sorted(attempts.items()))}
    return figures


def per_process(kills):
    """``{process: {"kills", "down_s_max", "serving_after_start_s_max", "never_served"}}``."""
    summary = {}
    for kill in kills:
        entry = summary.setdefault(kill["process"], {"kills": 0, "down_s_max": 0.0,
                                                     "serving_after_start_s_max": 0.0,
                                                     "never_served": 0})
        entry["kills"] += 1
        if kill["down_s"] is None:
            entry["never_served"] += 1
        else:
            entry["down_s_max"] = max(entry["down_s_max"], kill["down_s"])
            entry["serving_after_start_s_max"] = max(entry["serving_after_start_s_max"],
                                                     kill["serving_after_start_s"])
    return summary


def outcomes_between(ops, start, end):
    """Outcomes of the attempts that ended between ``start`` and ``end`` (by
    their end: a 503 comes RPC_TIMEOUT after its request)."""
    counts = collections.Counter(a.outcome for op in ops for a in op.attempts
                                 if start <= a.ended <= end)
    return dict(sorted(counts.items()))


def print_report(result, mesh):
    print("\n    requests         total  attempts  success   lost  attempt outcomes")
    for kind, label in (("bill", "POST /bills"), ("cancel", "POST .../cancel")):
        figures = result["requests"][kind]
        print("    {:<16} {:>5}  {:>8}  {:>7}  {:>5}  {}".format(
            label, figures["requests"], figures["attempts"], figures["answered"],
            figures["lost"], " ".join("{} x{}".format(k, v) for k, v in figures["outcomes"].items())))
    print("    bills in the database: {} ({} made by this run, {} cancelled); load {:.1f} s, "
          "settled in {:.1f} s".format(result["bills"], result["new_bills"], result["cancelled"],
                                        result["load_s"], result["settle_s"]))
    print("\n    process       pid->pid       killed at  restart after  serving after start  "
          "down for  answers from the kill to 2 s after")
    for kill in result["kills"]:
        serving = kill["serving_after_start_s"]
        print("    {:<13} {:>6}->{:<7} {:>7.1f} s  {:>11.1f} s  {:>17}  {:>8}  {}".format(
            kill["process"], kill["pid"], kill["new_pid"], kill["killed_at_s"],
            kill["restart_after_s"], "{:.1f} s".format(serving) if serving is not None else "NEVER",
            "{:.1f} s".format(kill["down_s"]) if kill["down_s"] is not None else "-",
            " ".join("{} x{}".format(k, v) for k, v in kill["answers_while_down"].items())))
    if any(entry["kills"] > 1 for entry in result["per_process"].values()):
        for name, entry in result["per_process"].items():
            print("    {:<13} {} kills, down at most {:.1f} s, serving at most {:.1f} s after a "
                  "start{}".format(name, entry["kills"], entry["down_s_max"],
                                   entry["serving_after_start_s_max"],
                                   ", NEVER served {} time(s)".format(entry["never_served"])
                                   if entry["never_served"] else ""))
    for name, pid, code, _ in mesh.exits:
        print("    !! {} (pid {}) exited by itself with {} and was started again".format(
            name, pid, code))
    print()
    for check in result["checks"]:
        print("    {:<46} {}  {}".format(check["name"], "PASS" if check["passed"] else "FAIL",
                                        check["figures"]))
        for kind, lines in (("-", check["problems"]), ("note:", check["notes"])):
            for line in lines[:20]:
                print("        {} {}".format(kind, line))
            if len(lines) > 20:
                print("        ... {} more".format(len(lines) - 20))
    if result["evidence"]:
        print("    the logs' warnings and errors about those requests:")
        for line in result["evidence"]:
            print("        " + line)
    if not result["settled"]:
        print("    did not settle within the time allowed: {}".format(
            ", ".join(k for k, v in result["conditions"].items() if not v)))
    print("    run {}: {}".format(result["run"], "PASS" if result["passed"] else "FAIL"),
          flush=True)


# --- main ---------------------------------------------------------------------------

@contextlib.contextmanager
def one_chaos_mesh():
    """Only one chaos mesh at a time on this machine (it loads every core)."""
    with open(LOCK_PATH, "w") as handle:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise SystemExit("another chaos run holds {}: one at a time".format(LOCK_PATH))
        yield


def parse_args(argv):
    parser = argparse.ArgumentParser(prog="python -m tools.chaos", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--duration", type=float, default=30.0,
                        help="seconds of load, over which the kills are spread (default "
                             "%(default)g; a kill's restart may make it longer)")
    parser.add_argument("--clients", type=int, default=16,
                        help="concurrent HTTP clients (default %(default)s)")
    parser.add_argument("--runs", type=int, default=1,
                        help="runs, each on a fresh mesh (default %(default)s)")
    parser.add_argument("--rounds", type=int, default=1,
                        help="times each process of --kill is killed per run (default %(default)s)")
    parser.add_argument("--kill", default=",".join(KILL_ORDER),
                        help="the processes to kill, in turn, comma-separated; '' for none "
                             "(default %(default)s)")
    parser.add_argument("--cancel", type=float, default=0.25,
                        help="fraction of bills answered 201 that are then cancelled "
                             "(default %(default)s)")
    parser.add_argument("--no-cancel", dest="cancel", action="store_const", const=0.0,
                        help="make bills only, no POST /bills/{id}/cancel")
    parser.add_argument("--keyed", type=float, default=0.2,
                        help="fraction of bills sent with an Idempotency-Key, and sent again "
                             "with it while their answer is lost (default %(default)s)")
    parser.add_argument("--pause", type=float, default=0.01,
                        help="seconds each client waits between requests (default %(default)s)")
    parser.add_argument("--settle", type=float, default=120.0,
                        help="seconds the mesh may take to settle after the load "
                             "(default %(default)g)")
    parser.add_argument("--seed", type=int, default=None,
                        help="random seed of the first run (default: a new one, printed)")
    parser.add_argument("--folder", default=None,
                        help="where each run's folder is made (default: the temp folder)")
    parser.add_argument("--keep", action="store_true",
                        help="keep each run's folder (logs, databases) also when it passed")
    parser.add_argument("--json", default=None, help="write every run's figures to this file")
    args = parser.parse_args(argv)
    args.kill = [name.strip() for name in args.kill.split(",") if name.strip()]
    unknown = sorted(set(args.kill) - set(KILL_ORDER))
    if unknown:
        parser.error("cannot kill {} (choose from {})".format(", ".join(unknown),
                                                             ", ".join(KILL_ORDER)))
    if args.seed is None:
        args.seed = random.randrange(10**6)
    return args


def main(argv=None):
    args = parse_args(argv)
    # SIGTERM (a test's timeout, CI) stops the meshes as Ctrl-C does
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    results = []
    with one_chaos_mesh():
        for run in range(1, args.runs + 1):
            results.append(run_once(args, run, args.seed + run - 1))
    passed = sum(1 for result in results if result["passed"])
    print("\nchaos: {}/{} runs passed (seed {}{})".format(
        passed, len(results), args.seed,
        "; repeat with --seed {}".format(args.seed)), flush=True)
    if args.json:
        with open(args.json, "w") as handle:
            json.dump({"args": {k: v for k, v in vars(args).items() if k != "json"},
                       "runs": results}, handle, indent=1, default=str)
    return 0 if passed == len(results) else 1


if __name__ == "__main__":
    sys.exit(main())
