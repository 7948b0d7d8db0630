"""Imports flow one way (docs/architecture.md). Every ``import`` of every
module of the project is read (ast, nothing is imported) and checked against
the rules below; a broken rule fails naming the file, the line and the rule.

Why not import-linter: a service here is a group of flat modules
(``services/billing.py`` with ``billing_models.py``, ``billing_schemas.py``,
``billing_seed.py`` beside it), and "no service imports another service's
module" is a rule about those groups, which its contract types cannot name.
"""
import ast
import os

import pytest

from common.config import ROOT
from contracts.services import BY_NAME

PROJECT_PACKAGES = ("contracts", "common", "mesh", "services", "streams", "tools")
THIRD_PARTY_NAMEKO = ("nameko", "nameko_sqlalchemy")

# package -> (packages of the project it may import, may it import nameko?)
ALLOWED = {
    "contracts": (("contracts",), False),
    "common": (("common", "contracts"), False),
    "mesh": (("mesh", "contracts", "common"), True),
    "services": (("services", "mesh", "contracts", "common"), True),
    "streams": (("streams", "contracts", "common"), False),
    "tools": (("tools", "contracts", "common"), False),
}
# module -> packages it may import besides its package's: tools/db.py (`make db`)
# locks, stamps and upgrades the databases with mesh.db's own code, as a start does;
# tools/chaos.py (`make chaos`) starts each process with the mesh's hub
# (mesh.hub) and waits for its consumers as the registry counts them (mesh.registry);
# tools/rebuild_analytics.py (`make rebuild-analytics`) calls the rebuilder with the
# mesh's asyncio client (mesh.aio), as a user's code would
MODULE_ALLOWED = {("tools", "db"): ("mesh",), ("tools", "chaos"): ("mesh",),
                  ("tools", "rebuild_analytics"): ("mesh",)}


def modules():
    """``(package, module name, path)`` of every module of the project."""
    for package in PROJECT_PACKAGES:
        folder = os.path.join(ROOT, package)
        for name in sorted(os.listdir(folder)):
            if name.endswith(".py"):
                yield package, name[:-3], os.path.join(folder, name)


def imports(path):
    """``(line, imported module)`` for every import in ``path``."""
    with open(path) as handle:
        tree = ast.parse(handle.read(), path)
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                yield node.lineno, alias.name
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            yield node.lineno, node.module
        elif isinstance(node, ast.ImportFrom):
            raise AssertionError("{}:{}: a relative import; import by the package's "
                                 "name".format(path, node.lineno))


def service_of(module_name):
    """``billing_models`` -> ``billing``, ``kafka_bridge`` -> ``kafka_bridge``: the
    service a module of services/ belongs to, the longest declared name
    (``contracts.services``) it is or begins with, followed by ``_`` (a name
    may hold one: ``make new-service NAME=gift_cards``); else its first word."""
    owners = [name for name in BY_NAME
              if module_name == name or module_name.startswith(name + "_")]
    return max(owners, key=len) if owners else module_name.split("_")[0]


def service_groups():
    """The services: the modules of services/ that a declared service is."""
    return {name for package, name, _ in modules()
            if package == "services" and name in BY_NAME}


def violations(package, module_name, path):
    allowed, nameko_ok = ALLOWED[package]
    allowed += MODULE_ALLOWED.get((package, module_name), ())
    groups = service_groups()
    for line, imported in imports(path):
        top = imported.split(".")[0]
        where = "{}:{} imports {}".format(os.path.relpath(path, ROOT), line, imported)
        if top in THIRD_PARTY_NAMEKO and not nameko_ok:
            yield "{}: {} may not import nameko".format(where, package)
        elif top in PROJECT_PACKAGES and top not in allowed:
            yield "{}: {} may import only {}".format(where, package, ", ".join(allowed))
        elif package == "services" and top == "services" and imported != "services":
            other = imported.split(".")[1]
            mine = service_of(module_name)
            if service_of(other) != mine and service_of(other) in groups:
                yield "{}: no service imports another service's module ({} is {}'s)".format(
                    where, imported, service_of(other))


@pytest.mark.parametrize("package, module_name, path", [
    pytest.param(package, name, path, id="{}/{}.py".format(package, name))
    for package, name, path in modules()])
def test_imports_flow_one_way(package, module_name, path):
    broken = list(violations(package, module_name, path))
    assert not broken, "\n".join(broken)


def test_the_rules_catch_a_service_importing_another(tmp_path):
    """The check above can fail: a billing module importing customers' tables,
    and contracts importing nameko, are both reported."""
    bad = tmp_path / "billing_bad.py"
    bad.write_text("from services.customers_models import Customer\n")
    assert [v.split(": ", 1)[1] for v in violations("services", "billing_bad", str(bad))] == [
        "no service imports another service's module (services.customers_models is customers's)"]
    bad.write_text("import nameko.rpc\nfrom mesh.rpc import rpc\n")
    assert len(list(violations("contracts", "bad", str(bad)))) == 2


def test_every_service_module_belongs_to_a_service():
    """A module of services/ is a service or named ``<service>_<what>.py``."""
    groups = service_groups()
    strays = [name for package, name, _ in modules()
              if package == "services" and name != "__init__" and service_of(name) not in groups]
    assert not strays, "modules of services/ that belong to no service: {}".format(strays)
