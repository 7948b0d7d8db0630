"""A RabbitMQ vhost of its own, made and deleted through the management API:
what the benchmark (``bench.harness``) and ``make chaos`` (``tools.chaos``) run
their meshes in, so that they never meet another mesh's queues.

    with Vhost("billing_mesh_bench_") as vhost:
        env["AMQP_URI"] = vhost.amqp_uri
"""
import contextlib
import os
import uuid

import requests

from common.config import load_config

RABBIT_API = os.environ.get("RABBIT_API_URI", "http://guest:guest@127.0.0.1:15672")


class NoManagementApi(RuntimeError):
    """RabbitMQ's management API does not answer (or refused the vhost)."""


class Vhost:
    """``prefix`` and 8 random hex digits; ``amqp_uri`` is config.yaml's
    ``AMQP_URI`` with this vhost. Entering makes it (guest may do anything in
    it) or raises ``NoManagementApi`` saying what to start; leaving deletes it."""

    def __init__(self, prefix):
        self.name = prefix + uuid.uuid4().hex[:8]
        base = load_config()["AMQP_URI"].rsplit("/", 1)[0]
        self.amqp_uri = "{}/{}".format(base, self.name)

    def __enter__(self):
        try:
            requests.put(RABBIT_API + "/api/vhosts/" + self.name, timeout=10).raise_for_status()
            requests.put(RABBIT_API + "/api/permissions/{}/guest".format(self.name), timeout=10,
                         json={"configure": ".*", "write": ".*", "read": ".*"}
                         ).raise_for_status()
        except requests.RequestException as exc:
            raise NoManagementApi(
                "RabbitMQ's management API at {} ({}); run: bash scripts/ensure-rabbitmq.sh "
                "--management".format(RABBIT_API, exc)) from exc
        return self

    def __exit__(self, *exc_info):
        with contextlib.suppress(requests.RequestException):
            requests.delete(RABBIT_API + "/api/vhosts/" + self.name, timeout=10)
