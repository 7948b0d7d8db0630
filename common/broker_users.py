"""Each service's RabbitMQ user, allowed what its declaration says it does and
nothing else (``contracts.services``: ``publishes``, ``handles``, ``calls``,
``listens``).

RabbitMQ checks three permissions per vhost, each a regular expression over
resource names: ``configure`` (declare or delete a queue or exchange),
``write`` (publish to an exchange, bind a queue) and ``read`` (consume or get
from a queue, bind to an exchange); and per exchange, topic permissions over
routing keys (``write``: the key a message is published with, ``read``: the
key a queue is bound with). A service's user may:

* configure only its own queues: its RPC queue ``rpc-<name>``, its reply
  queues ``rpc.reply-<name>-<uuid>``, its declared handlers' queues and its
  broadcast handlers' ``evt-<source>-<event>--<name>.<method>-<hex>``; no
  exchange (``common.topology`` declares them) and no other service's queue;
* publish to the RPC exchange and to its own ``<name>.events``; on the RPC
  exchange, only calls to the services it ``calls`` and replies (routing keys
  ``<service>.<method>``, and ``reply-<caller>-<uuid>`` or the bare ``<uuid>``
  of nameko's standalone proxies, ``nameko shell``): another service's user
  cannot call ``billing.cancel_bill``;
* consume its own queues, and bind them to the RPC exchange with its own keys
  only (``<name>.*``, its replies' ``reply-<name>-<uuid>``,
  ``common.topology.REPLY_ROUTING_KEY``) and to the event exchanges of the
  services it hears: it cannot bind a queue of its own to another service's
  calls, nor to the replies another service receives.

What permissions cannot say: a callee may publish a reply to any reply key, so
a service could answer a call it was never sent, if it learned the caller's
reply key (each request carries its caller's).
"""
import base64
import json
import re
import secrets
import urllib.error
import urllib.parse
import urllib.request
from dataclasses import dataclass

from common.topology import REPLY_ROUTING_KEY, RPC_EXCHANGE
from contracts.services import DECLARATIONS, RPC

UUID = "[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}"
METHOD = "[A-Za-z_][A-Za-z0-9_]*"
SERVICE = "[a-z_][a-z0-9_]*"
# nameko's default broadcast identifier: uuid4().hex
BROADCAST_ID = "[0-9a-f]{32}"


@dataclass(frozen=True)
class Permissions:
    """What one user may do in a vhost: RabbitMQ's three regular expressions,
    and the topic permission on the RPC exchange."""

    configure: str
    write: str
    read: str
    topic_exchange: str
    topic_write: str
    topic_read: str


def _one_of(patterns):
    return "^({})$".format("|".join(patterns)) if patterns else "^$"


def permissions(service, rpc_exchange=RPC_EXCHANGE):
    """The ``Permissions`` of ``service``'s (a ``contracts.services.Service``)
    user, from its declaration."""
    name = re.escape(service.name)
    own = ["rpc-" + name] if service.kind == RPC else []
    own.append(r"rpc\.reply-{}-{}".format(name, UUID))
    own.extend(re.escape(queue) for _, queue in service.handler_queues())
    own.extend(r"evt-{}-{}--{}\.{}-{}".format(re.escape(source), METHOD, name, METHOD,
                                             BROADCAST_ID)
               for source in service.heard())
    exchange = re.escape(rpc_exchange)
    events = [re.escape(service.name + ".events")] if service.events else []
    heard = [re.escape(source + ".events") for source in service.heard()]
    calls = [r"{}\.{}".format(re.escape(called), METHOD) for called in service.called()]
    bound = [re.escape(service.name + ".*")] if service.kind == RPC else []
    replies_to_anyone = re.escape(REPLY_ROUTING_KEY).replace(r"\{\}", SERVICE, 1).replace(
        r"\{\}", UUID, 1)
    own_replies = re.escape(REPLY_ROUTING_KEY).replace(r"\{\}", name, 1).replace(
        r"\{\}", UUID, 1)
    return Permissions(
        configure=_one_of(own),
        write=_one_of(own + [exchange] + events),
        read=_one_of(own + [exchange] + heard),
        topic_exchange=rpc_exchange,
        topic_write=_one_of(calls + [replies_to_anyone, UUID]),
        topic_read=_one_of(bound + [own_replies]),
    )


def broker_services():
    """The declarations of the services that talk AMQP, each with a user."""
    return [service for service in DECLARATIONS if service.uses_broker]


def password_variable(service_name):
    """The environment variable that may give ``service_name``'s password:
    ``BROKER_PASSWORD_BILLING``."""
    return "BROKER_PASSWORD_" + service_name.upper()


def new_password():
    return secrets.token_urlsafe(24)


def vhost_of(amqp_uri):
    """The vhost of an AMQP URI (the first, if several): ``/`` for none."""
    path = urllib.parse.urlsplit(amqp_uri.split(";")[0].strip()).path
    return urllib.parse.unquote(path[1:]) if len(path) > 1 else "/"


def with_credentials(amqp_uri, user, password):
    """``amqp_uri`` (one URI, or several separated by ``;``) logging in as
    ``user``.

        >>> with_credentials("pyamqp://guest:guest@h1:5672/;pyamqp://guest:guest@h2/", "a", "b")
        'pyamqp://a:b@h1:5672/;pyamqp://a:b@h2/'
    """
    credentials = "{}:{}@".format(urllib.parse.quote(user, safe=""),
                                  urllib.parse.quote(password, safe=""))
    uris = []
    for uri in amqp_uri.split(";"):
        parts = urllib.parse.urlsplit(uri.strip())
        host = parts.netloc.rpartition("@")[2]
        uris.append(urllib.parse.urlunsplit(parts._replace(netloc=credentials + host)))
    return ";".join(uris)


class ManagementApiError(RuntimeError):
    """RabbitMQ's management API did not answer, or refused a change."""


class ManagementApi:
    """The few calls of RabbitMQ's HTTP management API that make users, at
    ``url`` (``http://admin:secret@rabbitmq:15672``). urllib, not a client
    library: three PUTs of JSON need none."""

    def __init__(self, url, timeout=10):
        parts = urllib.parse.urlsplit(url)
        self.base = urllib.parse.urlunsplit(parts._replace(netloc=parts.netloc.rpartition("@")[2]))
        self.base = self.base.rstrip("/")
        user = urllib.parse.unquote(parts.username or "guest")
        password = urllib.parse.unquote(parts.password or "guest")
        self.authorization = "Basic " + base64.b64encode(
            "{}:{}".format(user, password).encode()).decode()
        self.timeout = timeout

    def put(self, path, body):
        request = urllib.request.Request(
            self.base + "/api/" + path, data=json.dumps(body).encode(), method="PUT",
            headers={"Authorization": self.authorization, "Content-Type": "application/json"})
        try:
            with urllib.request.urlopen(request, timeout=self.timeout):
                pass
        except urllib.error.HTTPError as exc:
            raise ManagementApiError("RabbitMQ's management API at {} refused PUT /api/{}: {} {}"
                                     .format(self.base, path, exc.code,
                                             exc.read().decode(errors="replace")[:200])) from exc
        except OSError as exc:
            raise ManagementApiError("RabbitMQ's management API does not answer at {} ({}): "
                                     "enable it (bash scripts/ensure-rabbitmq.sh --management), "
                                     "or set RABBITMQ_MANAGEMENT".format(self.base, exc)) from exc

    def set_user(self, user, password, vhost, allowed):
        """Make (or update) ``user`` with ``password`` and the ``Permissions``
        ``allowed`` in ``vhost``; no tags: it cannot use the management API."""
        quoted_user = urllib.parse.quote(user, safe="")
        quoted_vhost = urllib.parse.quote(vhost, safe="")
        self.put("users/" + quoted_user, {"password": password, "tags": ""})
        self.put("permissions/{}/{}".format(quoted_vhost, quoted_user),
                 {"configure": allowed.configure, "write": allowed.write, "read": allowed.read})
        self.put("topic-permissions/{}/{}".format(quoted_vhost, quoted_user),
                 {"exchange": allowed.topic_exchange, "write": allowed.topic_write,
                  "read": allowed.topic_read})


def create_broker_users(management_url, amqp_uri, passwords, rpc_exchange=RPC_EXCHANGE):
    """A user per service that talks AMQP (named after it), with its
    permissions in ``amqp_uri``'s vhost; ``passwords``: ``{service: password}``.
    ``{service: its AMQP URI}`` (``amqp_uri`` with its credentials)."""
    api = ManagementApi(management_url)
    vhost = vhost_of(amqp_uri)
    uris = {}
    for service in broker_services():
        password = passwords[service.name]
        api.set_user(service.name, password, vhost, permissions(service, rpc_exchange))
        uris[service.name] = with_credentials(amqp_uri, service.name, password)
    return uris
