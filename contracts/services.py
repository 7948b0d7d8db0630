"""The mesh's services, each declared once: everything else derives from here.

A declaration says what the rest of the mesh needs to know about a service:

* its name: the routing key of its RPC queue (``rpc-<name>``), its event
  exchange (``<name>.events``), its process name, its module
  (``services/<name>.py``);
* ``required``: no bill can be made without it (``GET /health`` is 503 while
  it is down); the others are shown, and their absence is ``degraded``;
* ``database``: it has a database of its own (``DB_URIS``, ``<NAME>_DB_URI``,
  by default ``sqlite:///<DATA_DIR>/<name>.db``: ``common.config.database_uri``);
* ``publishes``: the event types it sends (``contracts.events``);
* ``handles``: the other services' events it must not miss. Each gets a
  durable queue that the topology step declares before any service starts
  (``common.topology``), so an event published before its handler's service
  first ran waits there for it. Broadcast handlers (cache hints, live views)
  are not listed: their queues live and die with each instance;
* ``calls``: the services it calls over RPC (its ``MeshRpcProxy``s), and
  ``listens``: the services whose events it hears by broadcast (read caches,
  live views, heartbeats); ``EVERY_SERVICE`` for all of them. With ``handles``
  and ``publishes`` they are what its RabbitMQ user may do
  (``common.broker_users``): nothing it does not declare;
* ``max_instances``: ``1`` for a process that must run once (it binds a port,
  or works alone); ``None``: as many as ``INSTANCES`` asks.

What derives from the declarations: ``make run``'s processes and the
``Procfile``, ``docker-compose.yml``'s services, databases and Prometheus jobs
and the Kubernetes manifests' Deployments, budgets, roles and scalers
(``deploy/k8s``; ``make generate``), the gateway's health, registry and heartbeats, the
per-run databases of tests, ``make bench`` and ``make chaos``, the topology,
each service's RabbitMQ user and its permissions.
``tests/unit/test_declarations.py`` fails when a service has no declaration, or
a declaration no service, and says what to add.

Adding a service: ``make new-service NAME=payments`` writes ``PAYMENTS =
"payments"`` and ``Service(PAYMENTS, database=True)``; what it publishes and
handles is added as it grows (docs/tutorial.md)::

    Service(PAYMENTS, database=True, publishes=(BILL_PAID,),
            handles=(Handles(BILLING, BILL_CANCELLED, "refund_cancelled_bill"),)),
"""
from dataclasses import dataclass, field

from contracts.events import (
    BILL_CANCELLED, BILL_CREATED, CUSTOMER_DELETED, CUSTOMER_UPDATED, HEARTBEAT,
    PRODUCT_DELETED, PRODUCT_UPDATED, STOCK_CHANGED, handler_queue_name,
)

CUSTOMERS = "customers"
INVENTORY = "inventory"
BILLING = "billing"
GATEWAY = "gateway"
KAFKA_BRIDGE = "kafka_bridge"
ANALYTICS = "analytics"
STREAMS = "streams"  # the aggregator: a Kafka consumer, not a nameko service
REBUILDER = "rebuilder"  # rebuilds the analytics from billing's record

# what a declaration's process is
RPC = "rpc"          # a nameko service answering RPC: ping, describe, heartbeats
EDGE = "edge"        # the gateway: a nameko service with HTTP entrypoints
PROCESS = "process"  # a plain Python process (``python -m <module>``)

# ``calls=EVERY_SERVICE``, ``listens=EVERY_SERVICE``: all the declared ones
EVERY_SERVICE = "*"


@dataclass(frozen=True)
class Handles:
    """A handler of ``source``'s ``event`` (the method ``method`` of the
    declaring service), sharing one durable queue across its instances."""

    source: str
    event: str
    method: str


@dataclass(frozen=True)
class Service:
    """One service of the mesh (see the module's docstring)."""

    name: str
    kind: str = RPC
    required: bool = False
    database: bool = False
    publishes: tuple = ()
    handles: tuple = ()
    calls: tuple = ()
    listens: tuple = ()
    max_instances: int = None
    kafka: bool = False  # it talks to Kafka (compose gives it the broker's address)
    module: str = None  # default: services.<name> (python -m <module> for a PROCESS)
    # extra environment of its process, shell syntax: `make run`, the Procfile
    environment: tuple = field(default=())

    @property
    def module_path(self):
        return self.module or "services." + self.name

    @property
    def events(self):
        """``[(self.name, event type)]`` of every event it sends, heartbeats included."""
        heartbeat = (HEARTBEAT,) if self.kind == RPC else ()
        return [(self.name, event) for event in self.publishes + heartbeat]

    @property
    def uses_broker(self):
        """It talks AMQP (a nameko service), so it has a RabbitMQ user."""
        return self.kind in (RPC, EDGE)

    def called(self):
        """The names of the services it calls, ``EVERY_SERVICE`` resolved."""
        return _resolved(self.calls, RPC_SERVICES, self.name)

    def heard(self):
        """The sources of every event it consumes: handled and listened to."""
        listened = _resolved(self.listens, tuple(s.name for s in DECLARATIONS if s.events),
                             self.name)
        handled = tuple(handles.source for handles in self.handles)
        return tuple(dict.fromkeys(handled + listened))

    def handler_queues(self):
        """``[(Handles, queue name)]``: the durable queues of its handlers."""
        return [(handles, handler_queue_name(handles.source, handles.event, self.name,
                                             handles.method))
                for handles in self.handles]

    @property
    def command(self):
        """Its process's command line, as the Procfile has it."""
        prefix = "".join("{}={} ".format(key, value) for key, value in self.environment)
        if self.kind == PROCESS:
            return prefix + "python -m " + self.module_path
        return prefix + "nameko run --config config.yaml " + self.module_path


DECLARATIONS = (
    Service(CUSTOMERS, required=True, database=True,
            publishes=(CUSTOMER_UPDATED, CUSTOMER_DELETED), calls=(BILLING,)),
    Service(INVENTORY, required=True, database=True,
            publishes=(PRODUCT_UPDATED, PRODUCT_DELETED, STOCK_CHANGED), calls=(BILLING,),
            handles=(Handles(BILLING, BILL_CREATED, "confirm_reservation"),
                     Handles(BILLING, BILL_CANCELLED, "return_cancelled_stock"))),
    Service(BILLING, required=True, database=True,
            publishes=(BILL_CREATED, BILL_CANCELLED), calls=(CUSTOMERS, INVENTORY),
            listens=(CUSTOMERS,)),
    Service(KAFKA_BRIDGE, kafka=True,
            handles=(Handles(BILLING, BILL_CREATED, "forward_bill_created"),
                     Handles(BILLING, BILL_CANCELLED, "forward_bill_cancelled"))),
    Service(ANALYTICS, kafka=True),
    # as many as INSTANCES: they share billing.bills' partitions in one consumer group
    Service(STREAMS, kind=PROCESS, module="streams", kafka=True),
    # one watcher decides when to rebuild: two would give every bill twice
    Service(REBUILDER, max_instances=1, kafka=True, calls=(BILLING, ANALYTICS)),
    # its workers only wait on other services: callers must not queue behind a slow one
    Service(GATEWAY, kind=EDGE, max_instances=1, calls=EVERY_SERVICE, listens=EVERY_SERVICE,
            environment=(("MAX_WORKERS", "${GATEWAY_MAX_WORKERS:-100}"),)),
)

BY_NAME = {service.name: service for service in DECLARATIONS}


def declared(name):
    """The declaration of ``name``; a clear error naming what to add if none."""
    try:
        return BY_NAME[name]
    except KeyError:
        raise LookupError("no service {!r} is declared: add Service({!r}, ...) to "
                          "contracts/services.py DECLARATIONS".format(name, name)) from None


# derived lists, in declaration order
RPC_SERVICES = tuple(s.name for s in DECLARATIONS if s.kind == RPC)
REQUIRED_SERVICES = tuple(s.name for s in DECLARATIONS if s.required)
OPTIONAL_SERVICES = tuple(name for name in RPC_SERVICES if name not in REQUIRED_SERVICES)
DATABASE_SERVICES = tuple(s.name for s in DECLARATIONS if s.database)
NAMEKO_SERVICES = tuple(s.name for s in DECLARATIONS if s.kind in (RPC, EDGE))
SINGLE_INSTANCE = tuple(s.name for s in DECLARATIONS if s.max_instances == 1)
# (source service, event type) of every event the mesh sends
EVENTS = tuple(event for service in DECLARATIONS for event in service.events)


BROKER_SERVICES = tuple(s.name for s in DECLARATIONS if s.uses_broker)


def _resolved(names, every, own):
    if names == EVERY_SERVICE:
        return tuple(name for name in every if name != own)
    for name in names:
        declared(name)
    return tuple(names)


def handler_queues(source=None):
    """``[(queue name, source service, event type)]`` of every declared handler
    (of ``source``'s events only, if given): what the topology declares."""
    return [(queue, handles.source, handles.event)
            for service in DECLARATIONS for handles, queue in service.handler_queues()
            if source is None or handles.source == source]
