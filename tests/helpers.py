"""Helpers shared by the tests (plain functions and classes; fixtures live in
the conftest.py files)."""
import importlib
import os
import random
import subprocess
import sys
import time

import pytest
import requests

from common.config import ROOT, database_uri, database_variable
from contracts.events import bill_created_event
from contracts.services import (
    DATABASE_SERVICES, GATEWAY, NAMEKO_SERVICES, REQUIRED_SERVICES, declared,
)
from mesh.db import bootstrap, database_wrapper, make_engine, session_factory
from services.inventory_models import Product
from tools.net import answers, free_port  # noqa: F401  the tests' names for them

# the mesh a test starts unless it names services: what a bill needs, and the edge
CORE_SERVICES = REQUIRED_SERVICES + (GATEWAY,)
# every nameko service of the declarations
ALL_SERVICES = NAMEKO_SERVICES
# unit prices of the products in test events (streams, analytics)
PRICES = {1: "19.99", 2: "0.10", 3: "0.20", 4: "3.33", 5: "1250.00", 6: "7.05"}


def bill_event(customer_id, items, event_id=None):
    """A ``bill_created`` event (``contracts.events``); ``items`` are
    ``(product_id, quantity)``, priced from PRICES."""
    lines = [{"product_id": product, "quantity": quantity,
              "unit_price": PRICES.get(product, "2.50")} for product, quantity in items]
    return bill_created_event({"id": random.randint(1, 10**9), "customer_id": customer_id,
                               "items": lines}, event_id=event_id)


def seeded_db(tmp_path, base, seed, deadline=None):
    engine = make_engine("sqlite:///{}/{}.db".format(tmp_path, base.__name__))
    bootstrap(engine, base.metadata, seed)
    return engine, database_wrapper(session_factory(engine), deadline)


def stock(engine):
    """``{product id: stock}`` read straight from inventory's database."""
    with session_factory(engine)() as session:
        return {p.id: p.quantity for p in session.query(Product)}


def query(config, service, sql):
    """Rows straight from a service's database (``config["DB_URIS"]``):
    ``query(config, "customers", "SELECT count(*) FROM inbox")`` -> ``[(1,)]``."""
    from sqlalchemy import text

    engine = make_engine(database_uri(config, service))
    try:
        with engine.connect() as db:
            return db.execute(text(sql)).fetchall()
    finally:
        engine.dispose()


class Clock:
    """A clock a test moves: ``clock()`` is ``clock.now``."""

    def __init__(self, now=1000.0):
        self.now = now

    def __call__(self):
        return self.now


def sqlite_uris(folder):
    """``DB_URIS`` of every service declared with a database, SQLite in ``folder``."""
    return {name: "sqlite:///{}/{}.db".format(folder, name) for name in DATABASE_SERVICES}


class Mesh:
    """Handle on a running mesh: ``mesh.http("GET", "/customers")``, ``mesh.url``."""

    def __init__(self, config):
        self.config = config
        self.url = "http://" + config["WEB_SERVER_ADDRESS"]
        self.session = requests.Session()

    def http(self, method, path, **kwargs):
        kwargs.setdefault("timeout", 30)
        return self.session.request(method, self.url + path, **kwargs)


def service_classes(*names):
    """The service classes named (default: the core mesh), for a runner."""
    return [service_class(name) for name in names or CORE_SERVICES]


def service_class(name):
    """The nameko service class of the declared service ``name``, found in its
    module (``contracts.services``) as ``nameko run`` finds it."""
    module = importlib.import_module(declared(name).module_path)
    found = [cls for cls in vars(module).values()
             if isinstance(cls, type) and cls.__module__ == module.__name__
             and getattr(cls, "name", None) == name]
    assert found, "{} has no service class named {!r}".format(module.__name__, name)
    return found[0]


def run_service_process(module, config, log_path):
    """``nameko run`` one service in its own process with ``config`` passed through
    the environment variables config.yaml reads (as docker-compose does)."""
    env = dict(os.environ)
    env.update(config_env(config))
    log = open(log_path, "ab")
    module = module if "." in module else "services." + module
    return subprocess.Popen(
        [os.path.join(os.path.dirname(sys.executable), "nameko"), "run",
         "--config", os.path.join(ROOT, "config.yaml"), module],
        cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT)


def config_env(config):
    env = {database_variable(name): database_uri(config, name)
           for name in DATABASE_SERVICES}
    return dict(env, **{
        "AMQP_URI": config["AMQP_URI"],
        "RABBITMQ_MANAGEMENT": config["RABBITMQ_MANAGEMENT"],
        "WEB_SERVER_ADDRESS": config["WEB_SERVER_ADDRESS"],
        "RPC_TIMEOUT": str(config["RPC_TIMEOUT"]),
        "AUTH": str(config["AUTH"]),
        "AUTH_ISSUER": str(config["AUTH_ISSUER"]),
        "RATE_LIMIT_RATE": str(config["RATE_LIMIT_RATE"]),
        "LOG_LEVEL": "INFO",
    })


def wait_for(condition, timeout, message, interval=0.1):
    """Poll ``condition()`` until it returns something truthy; fail after ``timeout``
    with ``message`` (or what ``message()`` says then)."""
    deadline = time.time() + timeout
    last = None
    while time.time() < deadline:
        try:
            last = condition()
            if last:
                return last
        except Exception as exc:  # noqa: BLE001  keep polling, report the last
            last = exc
        time.sleep(interval)
    if callable(message):
        message = message()
    pytest.fail("{} (waited {} s; last: {!r})".format(message, timeout, last))


def processes_with(marker):
    """pids whose environment holds ``marker``: every process one launcher started
    (it puts the marker in their environment)."""
    found = []
    for pid in filter(str.isdigit, os.listdir("/proc")):
        try:
            with open("/proc/{}/environ".format(pid), "rb") as handle:
                if marker.encode() in handle.read():
                    found.append(int(pid))
        except OSError:
            pass
    return found


def rabbitmqctl(*args):
    """``rabbitmqctl <args>`` on the test broker (``stop_app``, ``start_app``: a
    RabbitMQ restart); fails the test saying what is needed if it cannot."""
    try:
        subprocess.run(["rabbitmqctl", *args], check=True, capture_output=True, timeout=120)
    except (OSError, subprocess.SubprocessError) as exc:
        pytest.fail("this test restarts RabbitMQ with `rabbitmqctl {}` and could not ({}): "
                    "run it as root on the broker's machine".format(" ".join(args), exc),
                    pytrace=False)


def connected_users(rabbit_manager, vhost):
    """The users of every connection to RabbitMQ's ``vhost`` now (nameko's
    ``rabbit_manager``, the management API: it lists them a few seconds late)."""
    return {connection["user"] for connection in rabbit_manager.get_connections()
            if connection.get("vhost") == vhost}
