"""Readiness must not go back: once ``make run`` said the mesh is up, ``/health``
must not answer "behind" from a stale cache, whichever instance is asked."""
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import SimpleNamespace

import pytest

import services.analytics as analytics
from tools.net import wait_until_ok


@pytest.fixture
def answering(request):
    """A server answering the bodies in ``answers`` in turn (the last one for ever)."""
    answers = list(request.param)
    served = []

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self):
            body = answers[min(len(served), len(answers) - 1)].encode()
            served.append(body)
            self.send_response(200)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args):
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield "http://127.0.0.1:{}/".format(server.server_port), served
    server.shutdown()


@pytest.mark.parametrize("answering", [["ok", "no", "ok", "ok", "ok", "no"]], indirect=True)
def test_wait_until_ok_wants_the_answers_in_a_row(answering):
    url, served = answering
    ok, body = wait_until_ok(url, 5, interval=0.01, ready=lambda body: body == "ok", times=3)
    assert ok and body == "ok"
    assert len(served) == 5, "the first ok, broken by a no, does not count"


@pytest.mark.parametrize("answering", [["ok", "no"]], indirect=True)
def test_wait_until_ok_gives_up_when_the_answers_do_not_hold(answering):
    url, served = answering
    ok, body = wait_until_ok(url, 0.3, interval=0.01, ready=lambda body: body == "ok", times=2)
    assert not ok and body == "no"


def test_readiness_is_not_answered_from_a_cache_while_behind(monkeypatch):
    lags = iter([3, 0, 0])
    asked = []

    def group_lag(bootstrap, group, topic, timeout):
        asked.append(topic)
        return next(lags)
    monkeypatch.setattr(analytics, "group_lag", group_lag)
    monkeypatch.setattr(analytics, "_readiness", {})
    monkeypatch.setattr(analytics, "_progress", {})
    service = SimpleNamespace(view=SimpleNamespace(bootstrap="kafka:1", caught_up=lambda: True,
                                                   table=lambda topic: {}))
    readiness = analytics.AnalyticsService.get_readiness
    assert readiness(service)["streams"] == "catching_up"
    # asked again at once: Kafka is asked again, not the cached "behind"
    assert readiness(service)["streams"] == "up"
    assert len(asked) == 2
    # all up: kept for READINESS_CACHE_S, Kafka not asked
    assert readiness(service)["streams"] == "up"
    assert len(asked) == 2
