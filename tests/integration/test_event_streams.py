"""The gateway's server-sent event streams, as a browser's EventSource or
``curl -N`` reads them: headers at once, each event as it is made, ids to
resume from, and nothing left behind by clients that come and go."""
import logging
import os
import socket
import time

import eventlet
import pytest
import requests
from nameko.testing.utils import get_container, get_extension

from helpers import Mesh, service_classes, wait_for
from mesh.feed import EventFeed
from services.gateway import STREAM_HEARTBEAT_S, GatewayService


def read_events(lines, count, deadline_s):
    """``count`` events ``{"id", "event", "data", "at"}`` from an open stream's lines."""
    events, current, started = [], {}, time.monotonic()
    for line in lines:
        if time.monotonic() - started > deadline_s:
            break
        if line == "":
            if "event" in current:
                current["at"] = time.monotonic()
                events.append(current)
                if len(events) == count:
                    break
            current = {}
        elif not line.startswith(":"):
            field, _, value = line.partition(": ")
            current[field] = value
    return events


@pytest.fixture
def streaming_mesh(runner_factory, mesh_config, kafka):
    mesh_config["KAFKA_BOOTSTRAP_SERVERS"] = kafka.bootstrap
    runner = runner_factory(mesh_config, *service_classes(
        "customers", "inventory", "billing", "gateway", "analytics"))
    runner.start()
    mesh = Mesh(mesh_config)
    mesh.gateway = get_container(runner, GatewayService)
    return mesh


def test_revenue_stream_sends_its_first_event_at_once_then_one_a_second(streaming_mesh):
    started = time.monotonic()
    with requests.get(streaming_mesh.url + "/analytics/stream", stream=True, timeout=10) as answer:
        headers_after = time.monotonic() - started
        assert answer.headers["Content-Type"].startswith("text/event-stream")
        events = read_events(answer.iter_lines(decode_unicode=True), 4, 8)
    assert headers_after < 1.0, "headers took {:.2f} s".format(headers_after)
    assert [event["event"] for event in events] == ["windows"] * 4
    assert events[0]["at"] - started < 1.0, "first event after {:.2f} s".format(
        events[0]["at"] - started)
    gaps = [later["at"] - earlier["at"] for earlier, later in zip(events, events[1:])]
    assert all(0.8 < gap < 1.6 for gap in gaps), gaps
    assert all(event["id"].isdigit() for event in events)


def test_mesh_events_stream_bills_as_they_are_made_and_resumes(streaming_mesh):
    url = streaming_mesh.url + "/events/stream"
    with requests.get(url, stream=True, timeout=10) as answer:
        lines = answer.iter_lines(decode_unicode=True)
        assert next(lines).startswith("retry: ")  # the first chunk leaves at once
        made = []
        for quantity in (1, 2):
            posted_at = time.monotonic()
            bill = streaming_mesh.http("POST", "/bills", json={
                "customer_id": 1, "items": [{"product_id": 2, "quantity": quantity}]})
            assert bill.status_code == 201, bill.text
            (event,) = read_events(lines, 1, 5)
            assert event["event"] == "bill_created"
            assert '"id":{}'.format(bill.json()["id"]) in event["data"]
            assert event["at"] - posted_at < 1.0
            made.append((event["id"], bill.json()["id"]))
    # a browser reconnecting sends the last id it saw: it gets what came after
    with requests.get(url, stream=True, timeout=10,
                      headers={"Last-Event-ID": made[0][0]}) as again:
        (missed,) = read_events(again.iter_lines(decode_unicode=True), 1, 5)
    assert missed["id"] == made[1][0]


def test_clients_that_come_and_go_leave_nothing_behind(streaming_mesh):
    gateway = streaming_mesh.gateway
    feed = get_extension(gateway, EventFeed).feed
    host, port = streaming_mesh.url[len("http://"):].split(":")

    def connect_and_drop(path):
        with socket.create_connection((host, int(port)), timeout=5) as sock:
            sock.sendall("GET {} HTTP/1.1\r\nHost: x\r\n\r\n".format(path).encode())
            assert b"200 OK" in sock.recv(4096)

    def open_streams():
        return len(feed.subscribers)

    connect_and_drop("/events/stream")
    wait_for(lambda: open_streams() == 0, 3 * STREAM_HEARTBEAT_S, "the first stream closed")
    workers_before = len(gateway._worker_threads)
    rss_before = rss_mb()
    for _ in range(100):
        connect_and_drop("/events/stream")
        connect_and_drop("/analytics/stream")
    # a closed stream is noticed by the heartbeat comments (the second write
    # to a socket the client closed fails)
    wait_for(lambda: open_streams() == 0, 3 * STREAM_HEARTBEAT_S,
             "every /events/stream subscriber gone")
    assert len(gateway._worker_threads) <= workers_before
    assert rss_mb() - rss_before < 20, "memory grew {:.1f} MB".format(rss_mb() - rss_before)
    print("workers {} -> {}, RSS {:.1f} -> {:.1f} MB".format(
        workers_before, len(gateway._worker_threads), rss_before, rss_mb()))


def rss_mb():
    with open("/proc/{}/status".format(os.getpid())) as handle:
        for line in handle:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    raise AssertionError("no VmRSS")


def test_clients_that_drop_a_stream_leave_no_traceback_in_the_log(streaming_mesh, caplog):
    """A browser closing the console, or a stream, is an ordinary day: at most
    one log line for each, never a traceback."""
    caplog.set_level(logging.DEBUG)
    feed = get_extension(streaming_mesh.gateway, EventFeed).feed
    host, port = streaming_mesh.url[len("http://"):].split(":")
    drops = 20
    for _ in range(drops):
        with socket.create_connection((host, int(port)), timeout=5) as sock:
            sock.sendall(b"GET /events/stream HTTP/1.1\r\nHost: x\r\n\r\n")
            assert b"200 OK" in sock.recv(4096)
    # each stream ends at the first write after its client left: a heartbeat comment
    wait_for(lambda: not feed.subscribers, 3 * STREAM_HEARTBEAT_S,
             "every /events/stream subscriber gone")
    eventlet.sleep(0.5)  # what the ended streams log, logged
    records = [record for record in caplog.records if record.levelno >= logging.INFO]
    tracebacks = [record.getMessage() for record in records
                  if record.exc_info or "Traceback" in record.getMessage()]
    assert not tracebacks, "{} tracebacks, the first: {}".format(len(tracebacks), tracebacks[0])
    # the web server's own lines (nameko's, eventlet's, the mesh's edge)
    served = [record.getMessage() for record in records
              if record.name.startswith(("nameko.web", "eventlet", "mesh.http"))]
    assert len(served) <= drops, served
    assert all("\n" not in line for line in served), served
