"""``mesh.http.JsonWsgiApp.match``: the route found once per path, as werkzeug
finds it; routing answers (404, 405, redirects) never kept."""
from types import SimpleNamespace

import pytest
from werkzeug.exceptions import MethodNotAllowed, NotFound
from werkzeug.routing import Map, RequestRedirect, Rule
from werkzeug.test import EnvironBuilder

import mesh.http
from mesh.http import JsonWsgiApp


def app_with(*rules):
    server = SimpleNamespace(make_url_map=lambda: Map(list(rules)),
                             container=SimpleNamespace(config={}))
    return JsonWsgiApp(server)


def environ(path, method="GET"):
    return EnvironBuilder(path=path, method=method).get_environ()


def test_a_path_is_matched_once_and_answers_its_own_values():
    app = app_with(Rule("/bills/<int:bill_id>", methods=["GET"], endpoint="get_bill"),
                   Rule("/bills/<int:bill_id>/cancel", methods=["POST"], endpoint="cancel"))
    rule, values = app.match(environ("/bills/4"), "GET")
    assert (rule.endpoint, values) == ("get_bill", {"bill_id": 4})
    values["bill_id"] = 99  # a route's own copy: the next request is not touched
    binds = []
    real_bind = app.url_map.bind_to_environ
    app.url_map.bind_to_environ = lambda env: binds.append(env) or real_bind(env)
    assert app.match(environ("/bills/4"), "GET")[1] == {"bill_id": 4}
    assert binds == []  # answered from the cache
    assert app.match(environ("/bills/4/cancel", "POST"), "POST")[0].endpoint == "cancel"
    assert len(binds) == 1


def test_routing_answers_are_never_kept():
    app = app_with(Rule("/bills/", methods=["GET"], endpoint="list"))
    with pytest.raises(NotFound):
        app.match(environ("/nothing"), "GET")
    with pytest.raises(MethodNotAllowed):
        app.match(environ("/bills/", "DELETE"), "DELETE")
    with pytest.raises(RequestRedirect):
        app.match(environ("/bills"), "GET")
    assert app.routes == {}


def test_the_cache_is_bounded(monkeypatch):
    monkeypatch.setattr(mesh.http, "ROUTE_CACHE_SIZE", 3)
    app = app_with(Rule("/bills/<int:bill_id>", methods=["GET"], endpoint="get_bill"))
    for bill_id in range(10):
        app.match(environ("/bills/{}".format(bill_id)), "GET")
        assert len(app.routes) <= 3
