"""Day two: ``make run`` again after a Ctrl-C, after a power cut. The local Kafka
broker keeps its log in memory, so each restart finds the Kafka side empty
while billing's database holds every bill: the analytics must come back equal
to billing by themselves (``services.rebuilder``), and ``/health`` must not say
``ok`` before they do."""
import os
import signal
import subprocess
import sys
import time

import pytest
import requests
from kafka import KafkaAdminClient

from common.config import ROOT
from contracts.topics import AGGREGATES
from helpers import rabbitmqctl, wait_for
from launcher import Launcher, Load, figures, make_bills, same
from tools.local_kafka import LocalKafka
from tools.net import answers, split_address


def assert_equal_when_ready(launcher, rebuilt=True):
    billed, shown = figures(launcher.url)
    assert shown == billed, "when make run said ready, analytics {} != billing {}".format(
        shown, billed)
    early_ok = [entry for entry in launcher.health[:launcher.ready_at]
                if entry[0] == "ok" and not entry[1]]
    assert not early_ok, "/health said ok while analytics differed from billing"
    if not rebuilt:
        return
    statuses = [status for status, _, _ in launcher.health]
    assert "rebuilding" in statuses, "no rebuild was seen in /health: {}".format(
        sorted(set(statuses)))
    progress = [p for status, _, p in launcher.health if status == "rebuilding" and p]
    assert progress and progress[-1]["analytics"]["events_total"] >= 1, progress[-1:]


@pytest.fixture
def launcher(mesh_config, tmp_path):
    launched = Launcher(mesh_config, tmp_path)
    yield launched
    launched.stop()


@pytest.mark.timeout(200)
def test_make_run_again_after_ctrl_c_ends_with_analytics_equal_to_billing(launcher):
    """The sequence of the issue: bills, cancellations, Ctrl-C, ``make run``
    again. Then, on the same mesh, what a healthy Kafka must not cause (a
    second ``make run`` refused, the aggregator restarted without its state:
    nothing given again), and an operator's forced rebuild."""
    launcher.start()
    make_bills(launcher.url, 10, cancel=3)
    wait_for(lambda: same(*figures(launcher.url)), 30,
             "analytics equal to billing before the restart")
    launcher.ctrl_c()
    assert not answers(*split_address(launcher.kafka), timeout=0.5), \
        "the local Kafka broker still answers after Ctrl-C"

    launcher.start()
    assert_equal_when_ready(launcher)
    make_bills(launcher.url, 3, cancel=1)
    wait_for(lambda: same(*figures(launcher.url)), 30, "analytics equal after new bills")

    second_make_run_is_refused(launcher)
    aggregator_restarts_give_nothing_again(launcher)
    forced_rebuild_shows_its_progress(launcher)


@pytest.mark.long
@pytest.mark.timeout(240)
def test_a_kafka_that_keeps_its_log_gives_nothing_again_and_lost_topics_are_rebuilt(
        launcher, tmp_path):
    """A broker of the user's own that outlives the mesh (``KAFKA_ATTACH``; here a
    Tansu the test starts, as Apache Kafka keeps its log): ``make run`` again gives
    nothing again. Then analytics' topics (the aggregator's results) deleted
    and created again while the aggregator keeps its state: the rebuild
    publishes every figure again (a repeat restates it) and new bills still
    count. (``billing.bills`` deleted takes the aggregator's state with it,
    like the broker restarted empty: the other tests.)"""
    kafka = LocalKafka(launcher.kafka, log_path=str(tmp_path / "log" / "own-tansu.log"))
    kafka.start()
    launcher.env["KAFKA_ATTACH"] = "true"
    try:
        launcher.start()
        make_bills(launcher.url, 8, cancel=3)
        wait_for(lambda: same(*figures(launcher.url)), 30, "analytics equal to billing")
        launcher.ctrl_c()
        assert answers(*split_address(launcher.kafka), timeout=0.5), \
            "make run stopped a broker it did not start"

        before = len(rebuilds_in(launcher))
        launcher.start()
        assert_equal_when_ready(launcher, rebuilt=False)
        time.sleep(8)  # the rebuilder's strikes, had it found anything short
        assert len(rebuilds_in(launcher)) == before, "a healthy restart gave the record again"
        assert "rebuilding" not in [status for status, _, _ in launcher.health]
        launcher.ctrl_c()

        admin = KafkaAdminClient(bootstrap_servers=launcher.kafka)
        try:
            admin.delete_topics(list(AGGREGATES))
        finally:
            admin.close()
        launcher.start()  # make run creates them again, empty
        assert_equal_when_ready(launcher)
        assert len(rebuilds_in(launcher)) == before + 1, rebuilds_in(launcher)
        make_bills(launcher.url, 4, cancel=1)
        wait_for(lambda: same(*figures(launcher.url)), 30, "new bills counted")
    finally:
        launcher.stop()
        kafka.kill()


def broker_pid(launcher):
    return launcher.pid_with("--storage-engine")


@pytest.mark.long
@pytest.mark.timeout(260)
def test_kafka_killed_and_rabbitmq_restarted_under_load_then_a_power_cut_end_equal_to_billing(
        launcher):
    """The local broker SIGKILLed alone under load (``make run`` starts it
    again), RabbitMQ restarted under load, then every process SIGKILLed at once
    (a power cut) and ``make run`` again: each time the analytics come back
    equal to billing by themselves."""
    launcher.start()
    first = broker_pid(launcher)
    assert first, "no local broker among the launcher's processes"
    with Load(launcher.url) as load:
        wait_for(lambda: load.made >= 15, 20, "bills made under load")
        os.kill(first, signal.SIGKILL)
        wait_for(lambda: broker_pid(launcher) not in (None, first), 20,
                 "the launcher starting the broker again")
        made = load.made
        wait_for(lambda: load.made >= made + 15, 20, "bills made after the broker came back")
    assert not [f for f in load.failed if f != 503], load.failed[:10]  # 503 at worst
    statuses, last = [], []

    def equal_and_ok():
        body = requests.get(launcher.url + "/health", timeout=10).json()
        statuses.append(body["status"])
        last[:] = [body]
        return body["status"] == "ok" and same(*figures(launcher.url))
    wait_for(equal_and_ok, 60, lambda: "analytics equal to billing and /health ok; "
             "/health said {}, last {}".format(sorted(set(statuses)), last))
    assert "rebuilding" in statuses or rebuilds_in(launcher), "no rebuild happened"

    # RabbitMQ restarted under load: events wait in billing's outbox meanwhile
    with Load(launcher.url) as load:
        wait_for(lambda: load.made >= 10, 20, "bills made under load")
        rabbitmqctl("stop_app")
        try:
            time.sleep(2)
        finally:
            rabbitmqctl("start_app")
        made = load.made
        wait_for(lambda: load.made >= made + 10, 30, "bills made after RabbitMQ came back")
    assert not [f for f in load.failed if f != 503], load.failed[:10]
    wait_for(equal_and_ok, 60, lambda: "analytics equal to billing after RabbitMQ's restart; "
             "/health said {}, last {}".format(sorted(set(statuses)), last))

    make_bills(launcher.url, 4, cancel=2)
    launcher.power_cut()  # some events may still be on their way: that is the point
    launcher.start()
    assert_equal_when_ready(launcher)


def rebuilds_in(launcher):
    """The rebuilder's "rebuilding the analytics" lines so far."""
    path = launcher.log_dir / "rebuilder.log"
    return [line for line in path.read_text().splitlines()
            if "rebuilding the analytics" in line] if path.exists() else []


def aggregator_worker(launcher):
    return launcher.pid_with("streams", "--worker")


def second_make_run_is_refused(launcher):
    second = subprocess.run([sys.executable, "-m", "tools.run"], cwd=ROOT, env=launcher.env,
                            capture_output=True, text=True, timeout=60)
    assert second.returncode != 0
    assert "another `make run`" in second.stderr, second.stderr + second.stdout
    # and the first mesh is untouched
    wait_for(lambda: requests.get(launcher.url + "/health", timeout=10).json()["status"] == "ok",
             15, "the first mesh still healthy")


def aggregator_restarts_give_nothing_again(launcher):
    """A healthy Kafka keeps the aggregator's changelog: the aggregator killed
    and its state folder deleted, it rebuilds its state from there, and nothing
    is given again. (Killed with its folder kept: tests/integration/test_streams.py.)"""
    before = len(rebuilds_in(launcher))
    worker = aggregator_worker(launcher)
    os.kill(worker, signal.SIGKILL)
    subprocess.run(["rm", "-rf", launcher.env["STREAMS_STATE_DIR"]], check=True)
    wait_for(lambda: aggregator_worker(launcher) not in (None, worker), 20,
             "the aggregator started again by its supervisor")
    make_bills(launcher.url, 3, cancel=1)
    wait_for(lambda: same(*figures(launcher.url)), 60,
             "analytics equal to billing after the aggregator's restart")
    time.sleep(6)  # three of the rebuilder's checks
    assert len(rebuilds_in(launcher)) == before, rebuilds_in(launcher)


def forced_rebuild_shows_its_progress(launcher):
    forced = subprocess.run([sys.executable, "-m", "tools.rebuild_analytics"], cwd=ROOT,
                            env=launcher.env, capture_output=True, text=True, timeout=90)
    assert forced.returncode == 0, forced.stderr
    assert "done: " in forced.stdout and "events given again" in forced.stdout, forced.stdout
    assert same(*figures(launcher.url))
