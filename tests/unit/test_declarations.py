"""Every service is declared once (contracts/services.py), and everything that
derives from the declarations agrees with them: a service without a
declaration, a declaration without its service, a handler the declaration does
not list (or lists under another queue), or a generated file out of date fails
here, naming what to add or run."""
import os

import pytest
from nameko.containers import ServiceContainer

from common.config import ROOT, database_uri
from contracts import services
from contracts.services import DECLARATIONS, PROCESS, RPC, declared
from helpers import service_class
from mesh.events import EventHandler
from mesh.proxy import MeshRpcProxy, ServiceClients
from tools import generate

SERVICES_DIR = os.path.join(ROOT, "services")


def service_modules():
    """``{service name: module path}`` of every module of services/ that defines
    a nameko service (a class with a ``name`` and entrypoints)."""
    import ast
    found = {}
    for file_name in sorted(os.listdir(SERVICES_DIR)):
        if not file_name.endswith(".py"):
            continue
        with open(os.path.join(SERVICES_DIR, file_name)) as handle:
            tree = ast.parse(handle.read())
        for node in tree.body:
            if not isinstance(node, ast.ClassDef):
                continue
            for statement in node.body:
                if (isinstance(statement, ast.Assign) and len(statement.targets) == 1
                        and getattr(statement.targets[0], "id", None) == "name"
                        and isinstance(statement.value, (ast.Name, ast.Constant))):
                    found[node.name] = "services." + file_name[:-3]
    return found


def test_every_service_module_is_declared():
    declared_modules = {service.module_path for service in DECLARATIONS}
    undeclared = sorted(set(service_modules().values()) - declared_modules)
    assert not undeclared, (
        "services without a declaration: {}; add a Service(...) for each to "
        "contracts/services.py DECLARATIONS".format(undeclared))


@pytest.mark.parametrize("service", DECLARATIONS, ids=lambda service: service.name)
def test_every_declaration_has_its_service(service):
    if service.kind == PROCESS:
        module = service.module_path.replace(".", os.sep)
        assert (os.path.isfile(os.path.join(ROOT, module + ".py"))
                or os.path.isfile(os.path.join(ROOT, module, "__main__.py"))), (
            "{} is declared as `python -m {}`, which does not exist".format(
                service.name, service.module_path))
        return
    cls = service_class(service.name)  # fails naming the module without the class
    assert cls.name == service.name


@pytest.mark.parametrize("service", [s for s in DECLARATIONS if s.kind != PROCESS],
                         ids=lambda service: service.name)
def test_durable_handlers_are_exactly_the_declared_ones(service):
    """Each ``@event_handler`` (a durable queue shared by the instances) is
    declared under ``handles``, with the queue nameko derives from it; each
    declared one exists. Broadcast handlers are not declared."""
    container = ServiceContainer(service_class(service.name), {"AMQP_URI": "memory://"})
    handlers = {}
    for entrypoint in container.entrypoints:
        if isinstance(entrypoint, EventHandler) and entrypoint.reliable_delivery:
            entrypoint.setup()
            handlers[entrypoint.method_name] = (entrypoint.source_service,
                                                entrypoint.event_type, entrypoint.queue.name)
    declared_handlers = {handles.method: (handles.source, handles.event, queue)
                         for handles, queue in service.handler_queues()}
    assert handlers == declared_handlers, (
        "{}'s durable event handlers {} differ from its declaration's `handles` {}: "
        "list each as Handles(source, event, method) in contracts/services.py".format(
            service.name, handlers, declared_handlers))


@pytest.mark.parametrize("service", [s for s in DECLARATIONS if s.uses_broker],
                         ids=lambda service: service.name)
def test_calls_and_listens_are_exactly_what_the_code_does(service):
    """What a service's RabbitMQ user may do derives from ``calls`` and
    ``listens`` (``common.broker_users``): each ``MeshRpcProxy`` target must be
    in ``calls``, each broadcast handler's source in ``listens`` (or be
    handled), and nothing else, or the broker refuses the service at its first
    call (or lets it do more than it does)."""
    container = ServiceContainer(service_class(service.name), {"AMQP_URI": "memory://"})
    called, heard = set(), set()
    for dependency in container.dependencies:
        if isinstance(dependency, ServiceClients):
            called.update(dependency.services)
        elif isinstance(dependency, MeshRpcProxy):
            called.add(dependency.target_service)
    for entrypoint in container.entrypoints:
        if isinstance(entrypoint, EventHandler):
            heard.add(entrypoint.source_service)
    called.discard(service.name)
    heard.discard(service.name)
    assert called == set(service.called()), (
        "{} calls {} over RPC, its declaration's `calls` says {}: list them in "
        "contracts/services.py".format(service.name, sorted(called), sorted(service.called())))
    assert heard == set(service.heard()) - {service.name}, (
        "{} hears the events of {}, its declaration (`handles` and `listens`) says {}: "
        "list the sources of its broadcast handlers in `listens`".format(
            service.name, sorted(heard), sorted(service.heard())))


def test_handled_events_are_published_by_their_source():
    for service in DECLARATIONS:
        for handles in service.handles:
            assert handles.event in declared(handles.source).publishes, (
                "{} handles {}.{}, which {}'s declaration does not publish".format(
                    service.name, handles.source, handles.event, handles.source))


def test_names_are_unique_and_lists_derive_from_the_declarations():
    names = [service.name for service in DECLARATIONS]
    assert len(names) == len(set(names)), names
    assert set(services.REQUIRED_SERVICES) <= set(services.RPC_SERVICES)
    assert services.RPC_SERVICES == tuple(s.name for s in DECLARATIONS if s.kind == RPC)
    with pytest.raises(LookupError, match="contracts/services.py"):
        declared("no_such_service")  # not "shipping": make new-service's example


def test_a_declared_database_defaults_to_sqlite_in_data_dir(monkeypatch, tmp_path):
    monkeypatch.delenv("BILLING_DB_URI", raising=False)
    assert database_uri({"DATA_DIR": str(tmp_path)}, "billing") == \
        "sqlite:///{}/billing.db".format(tmp_path)
    monkeypatch.setenv("BILLING_DB_URI", "postgresql://db/billing")
    assert database_uri({"DATA_DIR": str(tmp_path)}, "billing") == "postgresql://db/billing"
    assert database_uri({"DB_URIS": {"billing": "sqlite:///x.db"}}, "billing") == "sqlite:///x.db"


def test_the_generated_files_are_up_to_date():
    assert not generate.stale(), (
        "out of date with contracts/services.py: {}; run `make generate`".format(
            generate.stale()))
