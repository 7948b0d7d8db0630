"""The docs the repository owns say what the code declares: every HTTP route
is in docs/http.md with its scope in docs/security.md, every RPC method in docs/rpc.md, every event and Kafka topic
in docs/events.md, docs/openapi.json is the document the gateway generates, and
nothing refers to a file outside the repository."""
import json
import os
import re
import subprocess

import pytest

from common.config import ROOT
from contracts.services import EVENTS, RPC_SERVICES
from contracts.topics import ALL_TOPICS
from helpers import service_classes
from mesh.http import declared_routes
from mesh.service import rpc_methods
from services.gateway import GatewayService, openapi_json

DOCS = os.path.join(ROOT, "docs")


def read(name):
    with open(os.path.join(DOCS, name), encoding="utf-8") as handle:
        return handle.read()


def shape(path):
    """``/customers/<int:customer_id>`` and ``/customers/{id}`` -> ``/customers/{}``."""
    path = re.sub(r"<(?:\w+(?:\([^)]*\))?:)?\w+>", "{}", path)
    return re.sub(r"\{[^}]*\}", "{}", path)


def test_every_route_is_in_docs_http():
    headings = {(method, shape(path)) for method, path in
                re.findall(r"^### (GET|POST|PUT|DELETE) (\S+)", read("http.md"), re.M)}
    missing = ["{} {}".format(ep.method, ep.url) for _, ep in declared_routes(GatewayService)
               if (ep.method, shape(ep.url)) not in headings]
    assert not missing, "routes without a '### METHOD /path' section in docs/http.md: {}".format(
        missing)


def test_docs_security_lists_each_routes_scope():
    """The "Scopes per route" table: each row a scope (or "none") and its routes."""
    section = read("security.md").split("### Scopes per route", 1)[1].split("\n## ", 1)[0]
    documented = {}
    for scope, routes in re.findall(r"^\| (`[^`|]+`|none) \| (.+) \|$", section, re.M):
        for route in re.findall(r"`((?:GET|POST|PUT|DELETE) [^`]+)`", routes):
            documented[route] = None if scope == "none" else scope.strip("`")
    declared = {"{} {}".format(ep.method, ep.url): ep.spec.scope
                for _, ep in declared_routes(GatewayService)}
    assert documented == declared, "docs/security.md's scopes table differs: {}".format(
        {route: (documented.get(route), declared.get(route))
         for route in set(documented) | set(declared)
         if documented.get(route, "?") != declared.get(route, "?")})


@pytest.mark.parametrize("service_cls", service_classes(*RPC_SERVICES), ids=lambda cls: cls.name)
def test_every_rpc_method_is_in_docs_rpc(service_cls):
    text = read("rpc.md")
    section = text.split("## " + service_cls.name, 1)
    assert len(section) == 2, "docs/rpc.md has no '## {}' section".format(service_cls.name)
    mine = section[1].split("\n## ", 1)[0]
    inherited = ("ping", "describe")  # documented once, for every service
    missing = [name for name in rpc_methods(service_cls)
               if name not in inherited and "`{}".format(name) not in mine]
    assert not missing, "{}'s RPC methods missing from its section of docs/rpc.md: {}".format(
        service_cls.name, missing)
    assert all("`{}".format(name) in text for name in inherited)


@pytest.mark.parametrize("service_cls", service_classes(*RPC_SERVICES), ids=lambda cls: cls.name)
def test_docs_rpc_holds_the_docstrings_examples(service_cls):
    """Each ``>>> n.rpc...`` line of an RPC method's docstring, word for word."""
    text = read("rpc.md")
    missing = []
    for name in rpc_methods(service_cls):
        for line in (getattr(service_cls, name).__doc__ or "").splitlines():
            if line.strip().startswith(">>> ") and line.strip() not in text:
                missing.append("{}: {}".format(name, line.strip()))
    assert not missing, "docstring examples missing from docs/rpc.md: {}".format(missing)


def test_every_event_and_topic_is_in_docs_events():
    text = read("events.md")
    missing = ["{}.{}".format(source, event) for source, event in EVENTS
               if not re.search(r"`(?:{}\.)?{}`".format(source, event), text)]
    missing += [topic for topic in ALL_TOPICS if "`{}`".format(topic) not in text]
    assert not missing, "missing from docs/events.md: {}".format(missing)


def test_docs_openapi_json_is_what_the_gateway_generates():
    with open(os.path.join(DOCS, "openapi.json"), encoding="utf-8") as handle:
        committed = json.load(handle)
    assert committed == json.loads(openapi_json()), \
        "docs/openapi.json is older than the code: run `make openapi`"


def test_nothing_refers_to_a_file_outside_the_repository():
    tracked = subprocess.run(["git", "ls-files"], cwd=ROOT, capture_output=True, text=True,
                             check=True).stdout.split()
    outside = re.compile(r"DESIGN\.md|\.\./shared|/work/shared")
    found = []
    for path in tracked:
        if (path.endswith((".js", ".png")) or path == "tests/unit/test_docs.py"
                or not os.path.isfile(os.path.join(ROOT, path))):  # deleted, not yet committed
            continue
        with open(os.path.join(ROOT, path), encoding="utf-8", errors="replace") as handle:
            for number, line in enumerate(handle, 1):
                if outside.search(line):
                    found.append("{}:{}".format(path, number))
    assert not found, "references to files outside the repository: {}".format(found)
