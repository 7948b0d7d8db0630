"""``python -m tools.topology``: prepare the broker of ``AMQP_URI`` for the mesh,
then exit. ``make run`` does it before it starts the mesh; compose's
``topology`` service runs it.

* the exchanges and every declared handler's durable queue
  (``common.topology``), as ``AMQP_URI``'s user (an administrator's);
* with ``--users``, a RabbitMQ user per service, allowed what its declaration
  says and nothing more (``common.broker_users``), made through the management
  API at ``RABBITMQ_MANAGEMENT``; each password from ``BROKER_PASSWORD_<NAME>``::

    AMQP_URI=pyamqp://admin:secret@rabbitmq:5672/ \\
    RABBITMQ_MANAGEMENT=http://admin:secret@rabbitmq:15672 \\
    BROKER_PASSWORD_CUSTOMERS=... BROKER_PASSWORD_BILLING=... \\
        python -m tools.topology --users

``make run`` keeps its passwords in ``var/broker/passwords.json`` (made on its
first run, readable by its owner only), unless ``BROKER_PASSWORD_<NAME>`` gives
one, and hands each process its own ``AMQP_URI``.

``--wait SECONDS`` declares nothing: it waits until the topology exists on
``AMQP_URI``'s broker (any user may look), and fails after that long; the
Kubernetes manifests run it before each service (``deploy/k8s``).
"""
import argparse
import json
import os
import sys
import time

from amqp.exceptions import AMQPError
from kombu.exceptions import OperationalError

from common.broker_users import (
    ManagementApiError, broker_services, create_broker_users, new_password, password_variable,
)
from common.config import load_config
from common.topology import declare_topology, missing_from_broker, queue_type_of, rpc_exchange_of


class BrokerNotReady(RuntimeError):
    """The broker could not be prepared: the message says what to start or set."""


def prepare_broker(config, passwords=None):
    """Declare the topology, then, given ``passwords`` (``{service: password}``),
    make each service's user. ``(queue names, {service: AMQP URI} or None)``."""
    uri = config["AMQP_URI"]
    rpc_exchange = rpc_exchange_of(config)
    try:
        queues = declare_topology(uri, queue_type=queue_type_of(config),
                                  rpc_exchange_name=rpc_exchange)
    except OSError as exc:
        raise BrokerNotReady("RabbitMQ does not answer at {} ({}): start it (make rabbitmq)"
                             .format(uri, exc)) from exc
    if passwords is None:
        return queues, None
    try:
        uris = create_broker_users(config["RABBITMQ_MANAGEMENT"], uri, passwords, rpc_exchange)
    except ManagementApiError as exc:
        raise BrokerNotReady(str(exc)) from exc
    return queues, uris


def passwords_from_environment(environ=os.environ):
    """``{service: password}`` from ``BROKER_PASSWORD_<NAME>``; an error naming
    those missing."""
    names = [service.name for service in broker_services()]
    missing = [password_variable(name) for name in names if not environ.get(password_variable(name))]
    if missing:
        raise BrokerNotReady("--users: set {}".format(", ".join(missing)))
    return {name: environ[password_variable(name)] for name in names}


def kept_passwords(path, environ=os.environ):
    """``{service: password}``: ``BROKER_PASSWORD_<NAME>`` if set, else the one
    kept in ``path`` (JSON), else a new one, kept there (mode 0600)."""
    try:
        with open(path) as handle:
            kept = json.load(handle)
    except (OSError, ValueError):
        kept = {}
    passwords = {}
    for service in broker_services():
        passwords[service.name] = (environ.get(password_variable(service.name))
                                   or kept.get(service.name) or new_password())
    if any(kept.get(name) != password for name, password in passwords.items()):
        os.makedirs(os.path.dirname(path), exist_ok=True)
        descriptor = os.open(path + ".tmp", os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(descriptor, "w") as handle:
            json.dump(passwords, handle, indent=1)
        os.replace(path + ".tmp", path)
    return passwords


def wait_for_topology(config, seconds, interval=2.0):
    """Return once the topology exists on ``AMQP_URI``'s broker; exit after
    ``seconds`` naming what is missing."""
    rpc_exchange = rpc_exchange_of(config)
    deadline = time.monotonic() + seconds
    while True:
        try:
            missing = missing_from_broker(config["AMQP_URI"], rpc_exchange_name=rpc_exchange)
        except (OSError, AMQPError, OperationalError) as exc:
            # not up yet, or this process's user not made yet (the topology step makes it)
            missing = ["(RabbitMQ does not let it in yet: {})".format(exc)]
        if not missing:
            print("topology: ready", flush=True)
            return
        if time.monotonic() > deadline:
            sys.exit("topology: still missing after {:.0f} s: {}; is the topology step "
                     "(python -m tools.topology --users) done?".format(seconds, ", ".join(missing)))
        print("topology: waiting for {}".format(", ".join(missing)), flush=True)
        time.sleep(interval)


def main(argv=None):
    parser = argparse.ArgumentParser(prog="python -m tools.topology", description=__doc__.split(
        "\n\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--users", action="store_true",
                        help="also make each service's RabbitMQ user (RABBITMQ_MANAGEMENT, "
                             "BROKER_PASSWORD_<NAME>)")
    parser.add_argument("--wait", type=float, metavar="SECONDS",
                        help="declare nothing: wait until the topology exists, at most this long")
    options = parser.parse_args(argv)
    config = load_config()
    if options.wait is not None:
        wait_for_topology(config, options.wait)
        return
    try:
        passwords = passwords_from_environment() if options.users else None
        names, uris = prepare_broker(config, passwords)
    except BrokerNotReady as exc:
        sys.exit("topology: {}".format(exc))
    print("topology: {} handler queue(s) declared: {}".format(len(names), ", ".join(names)),
          flush=True)
    if uris:
        print("topology: a RabbitMQ user for each of {}".format(", ".join(uris)), flush=True)


if __name__ == "__main__":
    main()
