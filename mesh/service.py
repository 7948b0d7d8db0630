"""``MeshService``: the base of every mesh service (``ping`` and ``describe``
for ``/health`` and ``/services``, request tracing in its logs)."""
import os
import socket

from nameko.extensions import ENTRYPOINT_EXTENSIONS_ATTR
from nameko.rpc import Rpc

from mesh.registry import Registry
from mesh.rpc import rpc
from mesh.tracing import Tracing

INSTANCE = "{}:{}".format(socket.gethostname(), os.getpid())


class MeshService:
    """Mixin of every mesh service: ``ping`` and ``describe`` for ``/health`` and
    ``/services``, and request tracing in its logs.

    Subclass it as ``mesh.service.MeshService``: ``nameko run`` takes every class in a
    service module that has entrypoints for a service, this one included if it
    is imported by name.
    """

    tracing = Tracing()
    registry = Registry()

    @rpc
    def ping(self):
        """Proves this service takes RPC calls, and says which instance answered.

            >>> n.rpc.customers.ping()
            {'service': 'customers', 'status': 'ok', 'instance': 'host-a:4242'}
        """
        return {"service": self.name, "status": "ok", "instance": INSTANCE}

    @rpc
    def describe(self):
        """This service's RPC methods, as the registry view shows them.

            >>> n.rpc.customers.describe()
            {'service': 'customers', 'instance': 'host-a:4242',
             'methods': ['create_customer', 'delete_customer', ...]}
        """
        return {"service": self.name, "instance": INSTANCE,
                "methods": rpc_methods(type(self))}


def rpc_methods(service_cls):
    """Names of the ``@rpc`` methods of ``service_cls``, mixins included."""
    return sorted(name for name in dir(service_cls)
                  if any(isinstance(ext, Rpc) for ext in
                         getattr(getattr(service_cls, name), ENTRYPOINT_EXTENSIONS_ATTR, ())))
