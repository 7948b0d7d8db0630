"""``async def`` entrypoints on the real broker: awaited proxies in parallel,
deadlines that cancel the task and commit nothing, errors and request ids
that cross as they do for synchronous methods."""
import logging
import time

import pytest
from nameko.standalone.rpc import ClusterRpcProxy

from contracts.errors import NotFound, ServiceUnavailable
from helpers import wait_for
from mesh.hub import hub_name
from services_under_test.coroutine_services import (
    SEEN, AsyncSleeperService, CallerService, FanOutService, SleeperService,
)

RPC_TIMEOUT = 1.0


@pytest.fixture
def coroutine_mesh(runner_factory, mesh_config, tmp_path):
    mesh_config["DB_URIS"]["fan_out"] = "sqlite:///{}/records.db".format(tmp_path)
    mesh_config["RPC_TIMEOUT"] = RPC_TIMEOUT
    SEEN.update(cancelled=[], events=[], ticks=0)
    runner = runner_factory(mesh_config, SleeperService, AsyncSleeperService, FanOutService,
                            CallerService)
    runner.start()
    return mesh_config


@pytest.fixture
def client(coroutine_mesh):
    with ClusterRpcProxy(coroutine_mesh, timeout=10,
                         context_data={"request_id": "coroutine-test-1"}) as proxy:
        yield proxy


def test_the_suite_runs_on_the_asyncio_hub():
    assert hub_name() == "asyncio", "start the tests with EVENTLET_HUB=asyncio (make test does)"


def test_awaited_calls_run_in_parallel(client):
    answer = client.fan_out.both(0.6, 0.5)
    assert answer["answers"] == [0.6, 0.5]
    # about the longer of the two, not their sum (1.1 s)
    assert 0.55 < answer["took"] < 0.95, answer


def test_a_deadline_inside_a_coroutine_cancels_it_and_commits_nothing(client):
    started = time.time()
    with pytest.raises(ServiceUnavailable):  # DeadlineExceeded is one too
        client.caller.sleep_then_record(3.0, "late")
    took = time.time() - started
    assert took < RPC_TIMEOUT + 0.5, "503 took {:.2f} s".format(took)
    wait_for(lambda: SEEN["cancelled"] == ["late"], 2, "the coroutine cancelled")
    time.sleep(3.2 - took)  # past the moment its sleep would have ended
    assert client.fan_out.count_records() == 0
    # within its deadline, the same call records
    assert client.caller.sleep_then_record(0.1, "in time") == "in time"
    assert client.fan_out.count_records() == 1


def test_an_awaited_call_past_its_deadline_raises_service_unavailable(client):
    # no deadline comes with this call: the awaited one gets RPC_TIMEOUT of its own
    started = time.time()
    with pytest.raises(ServiceUnavailable) as raised:
        client.fan_out.both(3.0, 0)
    took = time.time() - started
    assert "did not answer in time" in str(raised.value), raised.value
    assert took < RPC_TIMEOUT + 0.5, "the 503 took {:.2f} s".format(took)


def test_errors_cross_an_awaited_call_as_themselves(client):
    with pytest.raises(NotFound) as raised:
        client.fan_out.relay_failure()
    assert raised.value.code == "NOT_FOUND"


def test_log_lines_inside_a_coroutine_carry_the_request_id(client, caplog):
    caplog.set_level(logging.INFO)
    client.fan_out.both(0, 0)
    ids = {r.getMessage(): r.request_id for r in caplog.records
           if r.getMessage() in ("fanning out", "in a greenthread")}
    assert ids == {"fanning out": "coroutine-test-1", "in a greenthread": "coroutine-test-1"}, ids


def test_async_event_handlers_and_timers_run(client):
    client.sleeper.sleep(0)
    wait_for(lambda: SEEN["events"] == [{"seconds": 0}], 5, "the async handler saw the event")
    wait_for(lambda: SEEN["ticks"] >= 3, 5, "the async timer ticked")
