"""Helpers shared by the tests (plain functions; fixtures live in conftest.py)."""
import os
import socket
import subprocess
import sys
import time

import pytest

from mesh.config import ROOT


def answers(host, port):
    try:
        socket.create_connection((host, port), timeout=2).close()
        return True
    except OSError:
        return False


def free_port():
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


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
    uris = config["DB_URIS"]
    return {
        "AMQP_URI": config["AMQP_URI"],
        "CUSTOMERS_DB_URI": uris["customers:CustomersBase"],
        "INVENTORY_DB_URI": uris["inventory:InventoryBase"],
        "BILLING_DB_URI": uris["billing:BillingBase"],
        "WEB_SERVER_ADDRESS": config["WEB_SERVER_ADDRESS"],
        "RPC_TIMEOUT": str(config["RPC_TIMEOUT"]),
        "LOG_LEVEL": "INFO",
    }


def wait_for(condition, timeout, message, interval=0.1):
    """Poll ``condition()`` until it returns something truthy; fail after ``timeout``."""
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
    pytest.fail("{} (waited {} s; last: {!r})".format(message, timeout, last))
