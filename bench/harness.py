"""What every benchmark here needs: a mesh of its own, a Kafka broker of its own,
wrk, and the memory each process used.

The mesh runs exactly as ``make run`` runs it (``python -m tools.run``), but in
its own RabbitMQ vhost, on a free port, with its databases and logs in a
scratch folder, so a benchmark neither disturbs nor is disturbed by a mesh the
user already runs.

It runs on the eventlet hub it is asked for (``HUBS``: ``--hub`` or
``BENCH_HUB``, default ``asyncio``): every process the benchmark starts gets
``EVENTLET_HUB`` set explicitly (``mesh.hub.mesh_environment``), and
``BenchMesh.check_hubs`` checks, in the gateway's ``GET /services``, that every
instance reports the hub asked for.
"""
import json
import os
import platform
import signal
import subprocess
import sys
import tempfile
import time
from typing import NamedTuple

import requests

from common.config import ROOT, database_variable
from contracts.events import HEARTBEAT_INTERVAL_S
from contracts.services import DATABASE_SERVICES, RPC_SERVICES
from mesh.hub import ASYNCIO_HUB, HUB_VARIABLE, MESH_HUB, mesh_environment
from tools.local_kafka import KafkaNotStarted, LocalKafka
from tools.processes import command_line
from tools.run import descendants
from tools.net import free_port, http_status
from tools.vhost import NoManagementApi, Vhost

REPORT_LUA = os.path.join(ROOT, "bench", "wrk", "report.lua")


class Hub(NamedTuple):
    """A hub the benchmark can run the mesh on: the ``EVENTLET_HUB`` value that
    selects it, and the name ``mesh.hub.hub_name()`` reports for it."""
    variable: str
    reported: str


# (uvloop's loop under the asyncio hub was tried here and dropped: it was not
# faster beyond noise, docs/benchmarks.md)
HUBS = {
    "asyncio": Hub(MESH_HUB, ASYNCIO_HUB),  # the mesh's hub (mesh.hub, mesh.asyncio_hub)
    "epolls": Hub("epolls", "epolls"),  # eventlet's own default, the mesh's hub before
}
DEFAULT_HUB = "asyncio"
BENCH_HUB = "BENCH_HUB"  # the variable --hub defaults to


def hub_from_environment():
    """``BENCH_HUB`` (default ``asyncio``): the default of every ``--hub``."""
    return os.environ.get(BENCH_HUB) or DEFAULT_HUB


def add_hub_argument(parser):
    parser.add_argument("--hub", choices=sorted(HUBS), default=hub_from_environment(),
                        help="the eventlet hub every process of the mesh runs on "
                             "(default ${} or {})".format(BENCH_HUB, DEFAULT_HUB))


def use_hub_here(hub):
    """Put this process (the benchmark's own RPC client) on ``hub`` too. Only
    works before eventlet made this process's hub (nothing here does at import);
    checked."""
    import eventlet.hubs

    from mesh.hub import hub_name

    os.environ[HUB_VARIABLE] = HUBS[hub].variable
    eventlet.hubs.get_hub()
    if hub_name() != HUBS[hub].reported:
        sys.exit("the benchmark itself runs on the {} hub, not {}: its hub was made "
                 "before --hub was read".format(hub_name(), hub))


def hub_environment(environ, hub):
    """``environ`` with ``EVENTLET_HUB`` set for ``hub`` (a ``HUBS`` key)."""
    return mesh_environment(environ, hub=HUBS[hub].variable)


def python_version():
    """The Python every process of the benchmark runs (this venv's)."""
    return "{} ({})".format(platform.python_version(), platform.python_implementation())


def percentile(values, fraction):
    """``values`` sorted; nearest-rank percentile (``fraction`` 0.99 for p99)."""
    return values[min(len(values) - 1, int(round(fraction * (len(values) - 1))))]


def start_tansu(folder):
    """A fresh Tansu broker (memory only) on a free port: ``(bootstrap, broker)``;
    ``broker.kill()`` stops it."""
    try:
        broker = LocalKafka(log_path=os.path.join(folder, "tansu.log"), start_timeout=20).start()
    except KafkaNotStarted as exc:
        sys.exit(str(exc))
    return broker.bootstrap, broker


def stop(process, timeout=40):
    if process.poll() is None:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


class BenchVhost(Vhost):
    """The benchmark's own vhost (``tools.vhost``); no management API: it stops."""

    def __init__(self):
        super().__init__("billing_mesh_bench_")

    def __enter__(self):
        try:
            return super().__enter__()
        except NoManagementApi as exc:
            sys.exit("the benchmark needs " + str(exc))


class BenchMesh:
    """``python -m tools.run`` in a vhost, port and folder of its own.

        with BenchMesh(folder, bootstrap) as mesh:
            requests.get(mesh.url + "/customers/1")
            mesh.peak_rss_mb()  # {"gateway": 61.2, "customers": 55.0, ...}
    """

    def __init__(self, folder, bootstrap, hub=DEFAULT_HUB, amqp_uri=None, **settings):
        """``amqp_uri``: a broker of the benchmark's own (a cluster), used as
        it is; otherwise a vhost of its own on the local RabbitMQ."""
        self.folder = folder
        self.hub = hub
        self.vhost = BenchVhost() if amqp_uri is None else None
        self.port = free_port()
        self.url = "http://127.0.0.1:{}".format(self.port)
        # DATA_DIR alone says where every declared database is: no URI from the shell
        shell_uris = {database_variable(name) for name in DATABASE_SERVICES}
        environ = {key: value for key, value in os.environ.items() if key not in shell_uris}
        self.env = hub_environment(dict(
            environ, AMQP_URI=amqp_uri or self.vhost.amqp_uri,
            WEB_SERVER_ADDRESS="127.0.0.1:{}".format(self.port),
            # the run's own broker, started before the mesh
            KAFKA_BOOTSTRAP_SERVERS=bootstrap, KAFKA_ATTACH="true",
            MESH_LOG_DIR=os.path.join(folder, "log"),
            STREAMS_STATE_DIR=os.path.join(folder, "streams-state"),
            DATA_DIR=self.folder,  # every declared database, SQLite in this run's folder
            # the hops' costs: tokens are checked only where their cost is the
            # figure (mesh_bench's gateway with a token)
            AUTH="off",
            RATE_LIMIT_RATE="0",  # wrk's load comes from one address
            PATH=os.path.dirname(sys.executable) + os.pathsep + os.environ.get("PATH", "")), hub)
        self.env.update({key: str(value) for key, value in settings.items()})
        self.process = None

    def db_path(self, service):
        return os.path.join(self.folder, "{}.db".format(service))

    def __enter__(self):
        if self.vhost is not None:
            self.vhost.__enter__()
        self.process = subprocess.Popen(
            [sys.executable, "-m", "tools.run"], cwd=ROOT, env=self.env,
            stdout=open(os.path.join(self.folder, "mesh.log"), "ab"), stderr=subprocess.STDOUT)
        self.wait_healthy(self.url)
        return self

    def wait_healthy(self, url, seconds=120, hung_seconds=15):
        """Until ``GET /health`` answers 200. Gives up early when the gateway
        answers ``/health/live`` (a plain route) but ``/health`` (an ``async def``
        one) has not answered at all for ``hung_seconds``: what a hub without an
        asyncio loop (``epolls``) does to the mesh's coroutine entrypoints."""
        deadline, hung_since, last = time.time() + seconds, None, "no answer yet"
        while time.time() < deadline and self.process.poll() is None:
            status, last = http_status(url + "/health")
            if status == 200:
                return
            if status is None and http_status(url + "/health/live")[0] == 200:
                hung_since = hung_since or time.time()
                if time.time() - hung_since > hung_seconds:
                    self.__exit__()
                    sys.exit(
                        "on the {} hub ({}={}) the gateway answers GET /health/live but not "
                        "GET /health, an async def route, for {} s{}; see {}".format(
                            self.hub, HUB_VARIABLE, HUBS[self.hub].variable, hung_seconds,
                            "" if HUBS[self.hub].reported.startswith(ASYNCIO_HUB) else
                            ": the mesh's coroutine entrypoints (mesh.coroutines) need "
                            "eventlet's asyncio hub", self.folder))
            else:
                hung_since = None
            time.sleep(0.2)
        self.__exit__()
        sys.exit("the mesh did not become healthy at {} ({}); see {}".format(
            url, last, self.folder))

    def __exit__(self, *exc_info):
        if self.process is not None:
            stop(self.process)
        if self.vhost is not None:
            self.vhost.__exit__()

    def instance_hubs(self, url=None, seconds=3 * HEARTBEAT_INTERVAL_S + 5):
        """``{"customers vm:4242": "asyncio", ...}``: the hub of every instance the
        gateway at ``url`` (default the mesh's) lists in ``GET /services``, the
        gateway itself included; waits until every RPC service has an instance
        listed (their heartbeats come every few seconds)."""
        deadline = time.time() + seconds
        while True:
            services = requests.get((url or self.url) + "/services", timeout=10).json()["services"]
            found = {"{} {}".format(service["name"], instance["instance"]): instance["hub"]
                     for service in services for instance in service["instance_list"]}
            listed = {service["name"] for service in services if service["instance_list"]}
            unheard = sorted(set(RPC_SERVICES) - listed)
            if not unheard:
                return found
            if time.time() > deadline:
                sys.exit("no heartbeat from {} in {:.0f} s: cannot tell their hub; see {}".format(
                    ", ".join(unheard), seconds, self.folder))
            time.sleep(0.5)

    def check_hubs(self, *urls):
        """Every instance listed by the mesh's gateway (and by the gateways at
        ``urls``) runs on the hub asked for: ``{instance: hub}``; exits otherwise
        (inside ``with``, which stops the mesh)."""
        found = {}
        for url in (None,) + urls:
            found.update(self.instance_hubs(url))
        expected = HUBS[self.hub].reported
        wrong = {instance: hub for instance, hub in found.items() if hub != expected}
        if wrong:
            sys.exit("asked for the {} hub ({}={}), but these run on another: {}".format(
                self.hub, HUB_VARIABLE, HUBS[self.hub].variable, wrong))
        return found

    def processes(self):
        """``{name: pid}`` of every process the mesh runs (``customers``,
        ``gateway``, ``streams``, ... and ``launcher``)."""
        found = {"launcher": self.process.pid}
        for pid in descendants(self.process.pid):
            name = process_name(pid)
            if name:
                label, n = name, 1
                while label in found:
                    n += 1
                    label = "{}.{}".format(name, n)
                found[label] = pid
        return found

    def peak_rss_mb(self):
        """``{name: peak resident memory in MB}`` for every mesh process so far."""
        return {name: peak_rss_mb(pid) for name, pid in self.processes().items()}


def process_name(pid):
    """``customers`` for ``nameko run ... services.customers``, ``streams`` for
    ``python -m streams``; None for the shells honcho starts them through."""
    argv = command_line(pid)
    if "run" in argv and argv[-2:-1] and argv[-1].startswith("services."):
        return argv[-1].split(".", 1)[1]
    if "-m" in argv and argv[argv.index("-m") + 1:][:1] == ["streams"]:
        return "streams"
    return None


def cpu_seconds(pid):
    """CPU time (user + system) ``pid`` has used so far, in seconds; None once
    it is gone."""
    try:
        with open("/proc/{}/stat".format(pid)) as handle:
            fields = handle.read().rsplit(")", 1)[1].split()
    except OSError:
        return None
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def rabbitmq_pid():
    """The pid of the local RabbitMQ node (its Erlang VM), or None when the
    broker runs elsewhere."""
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                with open("/proc/{}/cmdline".format(entry), "rb") as handle:
                    argv = handle.read().split(b"\0")
            except OSError:
                continue
            if argv[0].endswith(b"beam.smp") and b"rabbit" in b" ".join(argv):
                return int(entry)
    return None


def peak_rss_mb(pid):
    """Peak resident set size (VmHWM) of ``pid`` in MB."""
    with open("/proc/{}/status".format(pid)) as handle:
        for line in handle:
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    return None


def wrk(url, seconds, connections=64, threads=2, script=None, env=None, timeout=2,
        headers=None):
    """Run wrk against ``url``; its figures as a dict (latencies in ms).
    ``headers``: sent with every request (``{"Authorization": "Bearer ..."}``).

    ``script`` (Lua, e.g. a ``request()`` making POST bodies) is run together with
    ``wrk/report.lua``, which reports statuses and percentiles as JSON.
    """
    with open(REPORT_LUA) as handle:
        lua = handle.read()
    if script:
        with open(script) as handle:
            lua = handle.read() + "\n" + lua
    with tempfile.NamedTemporaryFile("w", suffix=".lua", delete=False) as combined:
        combined.write(lua)
    try:
        command = ["wrk", "-t{}".format(threads), "-c{}".format(connections),
                   "-d{}s".format(max(1, round(seconds))), "--timeout", "{}s".format(timeout),
                   "-s", combined.name, url]
        for name, value in (headers or {}).items():
            command[1:1] = ["-H", "{}: {}".format(name, value)]
        result = subprocess.run(command, capture_output=True, text=True,
                                env=dict(os.environ, **(env or {})), timeout=seconds + 60)
    finally:
        os.unlink(combined.name)
    line = next((line for line in result.stdout.splitlines() if line.startswith("WRK-JSON ")), None)
    if line is None:
        sys.exit("wrk gave no figures for {}: {}{}".format(url, result.stdout, result.stderr))
    figures = json.loads(line[len("WRK-JSON "):])
    errors = figures["errors"]
    return {
        "requests": figures["requests"],
        "rps": figures["requests"] / (figures["duration_us"] / 1e6),
        "p50_ms": figures["p50_us"] / 1000, "p99_ms": figures["p99_us"] / 1000,
        "max_ms": figures["max_us"] / 1000,
        "statuses": {int(status): n for status, n in figures["statuses"].items()},
        # socket errors and timeouts count as errors, as do answers >= 400
        "errors": (errors["connect"] + errors["read"] + errors["write"]
                   + errors["timeout"] + errors["status"]),
        "socket_errors": errors,
    }
