"""``MeshService``: the base of every mesh service (``ping`` and ``describe``
for ``/health`` and ``/services``, a heartbeat for the registry view, request
tracing in its logs)."""
import datetime
import os
import platform
import socket

from nameko.extensions import ENTRYPOINT_EXTENSIONS_ATTR, DependencyProvider
from nameko.rpc import Rpc
from mesh.timer import timer

from contracts.events import HEARTBEAT, HEARTBEAT_INTERVAL_S, heartbeat
from mesh.events import ChangeEvents
from mesh.hub import StopOnSignal, hub_name
from mesh.metrics import Metrics, snapshot
from mesh.registry import Registry
from mesh.rpc import rpc
from mesh.tracing import Tracing

HOST, PID = socket.gethostname(), os.getpid()
INSTANCE = "{}:{}".format(HOST, PID)
STARTED_AT = datetime.datetime.now(datetime.timezone.utc).isoformat()


class SignalStop(DependencyProvider):
    """Makes SIGTERM stop a ``nameko run`` process at once on the asyncio hub
    (``mesh.hub.StopOnSignal``)."""

    def start(self):
        StopOnSignal.install()


class MeshService:
    """Mixin of every mesh service: ``ping`` and ``describe`` for ``/health`` and
    ``/services``, and request tracing in its logs.

    Subclass it as ``mesh.service.MeshService``: ``nameko run`` takes every class in a
    service module that has entrypoints for a service, this one included if it
    is imported by name.
    """

    tracing = Tracing()
    metrics = Metrics()
    registry = Registry()
    heartbeats = ChangeEvents()
    signal_stop = SignalStop()

    @rpc
    def ping(self):
        """Proves this service takes RPC calls, and says which instance answered.

            >>> n.rpc.customers.ping()
            {'service': 'customers', 'status': 'ok', 'instance': 'host-a:4242'}
        """
        return {"service": self.name, "status": "ok", "instance": INSTANCE}

    @timer(interval=HEARTBEAT_INTERVAL_S, eager=True)
    def send_heartbeat(self):
        """This instance is alive (Eureka's lease renewal): the gateway's registry
        view lists it while these arrive, with what it has served.

            customers.heartbeat {"instance": "host-a:4242", "metrics": {"calls": 12, ...}}
        """
        served = snapshot(self.name)
        # the worker running this heartbeat is busy too: not counted
        served["busy"] = max(served.get("busy", 0) - 1, 0)
        self.heartbeats(HEARTBEAT, heartbeat(
            self.name, INSTANCE, HOST, PID, platform.python_version(), hub_name(), STARTED_AT,
            served))

    @rpc
    def describe(self):
        """This service's RPC methods, as the registry view shows them, and
        what the answering instance runs on.

            >>> n.rpc.customers.describe()
            {'service': 'customers', 'instance': 'host-a:4242', 'python': '3.13.0',
             'hub': 'asyncio', 'methods': ['create_customer', 'delete_customer', ...]}
        """
        return {"service": self.name, "instance": INSTANCE,
                "python": platform.python_version(), "hub": hub_name(),
                "methods": rpc_methods(type(self))}


def rpc_methods(service_cls):
    """Names of the ``@rpc`` methods of ``service_cls``, mixins included."""
    return sorted(name for name in dir(service_cls)
                  if any(isinstance(ext, Rpc) for ext in
                         getattr(getattr(service_cls, name), ENTRYPOINT_EXTENSIONS_ATTR, ())))
