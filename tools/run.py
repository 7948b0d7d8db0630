"""``make run``: start the whole mesh, wait until it is healthy, stop it cleanly.

    python -m tools.run            # what `make run` calls
    INSTANCES=2 python -m tools.run

Processes come from the services' declarations (``contracts.services``: the
``Procfile`` is generated from the same) and are run by honcho (one ``nameko
run`` each, output prefixed with its name). First the topology: every declared
handler's durable queue (``common.topology``), so no event published before its
handler's first start is lost. On top of honcho this adds what a user needs
from one command: each process's output also goes to ``var/log/<name>.log``,
``INSTANCES`` instances of each service that may run more than once, and a
line with the gateway's URL once ``GET /health`` answers 200. Ctrl-C or SIGTERM
stops everything.

When nothing answers at ``KAFKA_BOOTSTRAP_SERVERS``, it first starts the local
Tansu broker (memory only, ``var/log/kafka.log``) and stops it at the end.

Metrics: every ``nameko run`` process gets a ``METRICS_PORT`` of its own
(``METRICS_BASE_PORT``, default 9400, then up, skipping ports already taken;
0 turns it off), and ``var/prometheus/targets.json`` (beside the log folder)
lists them for Prometheus' file-based discovery, so a local Prometheus scrapes
the whole mesh with (``honor_labels``: the metrics' own ``service`` label is
the target's, so it is kept as it is rather than doubled as ``exported_service``)::

    scrape_configs:
      - job_name: billing-mesh
        honor_labels: true
        file_sd_configs: [{files: [/path/to/billing-mesh/var/prometheus/targets.json]}]

A process that dies is not restarted, and does not take the others down (honcho
would): the failure stays visible in ``/health`` and ``/services``, and bringing
it back is the orchestrator's job (``restart:`` in docker-compose.yml).
"""
import json
import os
import sys
import threading

from honcho.manager import Manager
from honcho.printer import Printer

from common.config import ROOT, load_config
from common.topology import declare_topology
from contracts.services import DECLARATIONS, PROCESS
from tools.local_kafka import KafkaNotStarted, start_unless_running
from tools.net import answers, wait_until_ok

LOG_DIR = os.environ.get("MESH_LOG_DIR", os.path.join(ROOT, "var", "log"))
HEALTH_WAIT_S = float(os.environ.get("MESH_HEALTH_WAIT", 120))
METRICS_BASE_PORT = int(os.environ.get("METRICS_BASE_PORT", 9400))
# beside the logs, so a launcher with a folder of its own (tests, benchmarks)
# leaves the user's file alone
TARGETS_PATH = os.path.join(os.path.dirname(LOG_DIR), "prometheus", "targets.json")


class LogFilePrinter(Printer):
    """Honcho's printer, also appending each process's lines to its log file."""

    def __init__(self, log_dir):
        super().__init__(sys.stdout)
        os.makedirs(log_dir, exist_ok=True)
        self.log_dir = log_dir
        self.files = {}

    def write(self, message):
        super().write(message)
        if message.name not in self.files:
            path = os.path.join(self.log_dir, "{}.log".format(message.name))
            self.files[message.name] = open(path, "a", buffering=1)
        data = message.data
        if isinstance(data, bytes):
            data = data.decode("utf-8", "replace")
        self.files[message.name].write(data)


class MeshManager(Manager):
    """honcho's Manager, except that one process stopping leaves the others
    running; everything stops on Ctrl-C or SIGTERM, or once all have stopped."""

    def _any_stopped(self):
        # honcho's loop terminates everything as soon as this is true
        return self._terminating and super()._any_stopped()


def metrics_ports(labels, base, taken=lambda port: answers("127.0.0.1", port, timeout=0.2)):
    """``{process label: its METRICS_PORT}``: ``base``, ``base + 1``, ... in the
    order given, skipping ports something already listens on (another mesh);
    ``{}`` when ``base`` is 0."""
    ports, port = {}, base
    for label in labels if base else ():
        while taken(port):
            port += 1
        ports[label] = port
        port += 1
    return ports


def write_targets(path, targets):
    """Write Prometheus' file_sd targets file: ``targets`` is ``[(service,
    process label, port)]``. Replaced in one rename: Prometheus re-reads the file
    when it changes and must never see half of it.

        [{"targets": ["127.0.0.1:9400"], "labels": {"service": "customers",
                                                   "instance": "customers.1"}}, ...]
    """
    os.makedirs(os.path.dirname(path), exist_ok=True)
    groups = [{"targets": ["127.0.0.1:{}".format(port)],
               "labels": {"service": service, "instance": label}}
              for service, label, port in targets]
    with open(path + ".tmp", "w") as handle:
        json.dump(groups, handle, indent=1)
    os.replace(path + ".tmp", path)


def gateway_url(config):
    address = str(config.get("WEB_SERVER_ADDRESS", "0.0.0.0:8000"))
    host, _, port = address.rpartition(":")
    if host in ("", "0.0.0.0", "::"):
        host = "127.0.0.1"
    return "http://{}:{}".format(host, port)


def all_parts_up(health_body):
    """``GET /health`` says every part of the mesh is up (not catching up)."""
    try:
        return json.loads(health_body).get("status") == "ok"
    except ValueError:
        return False


def announce_when_healthy(url, manager):
    """Print the gateway's URL once ``/health`` answers 200; stop everything if
    it does not within ``MESH_HEALTH_WAIT`` seconds."""
    # every part up (analytics caught up with the seeded bills), not just a 200;
    # four answers in a row, so that with INSTANCES=2 both analytics instances
    # said so (RabbitMQ hands /health's calls to them in turn)
    healthy, last = wait_until_ok(url + "/health", HEALTH_WAIT_S, ready=all_parts_up,
                                  give_up=lambda: manager._terminating, interval=0.25,
                                  times=4)
    if healthy:
        print("billing-mesh is up: {}  (logs in {}; Ctrl-C stops it)".format(
            url, os.path.relpath(LOG_DIR, ROOT)), flush=True)
    elif not manager._terminating:
        print("billing-mesh did not become healthy within {:.0f} s ({}); see {}".format(
            HEALTH_WAIT_S, last, LOG_DIR), flush=True)
        manager.terminate()


def main():
    instances = int(os.environ.get("INSTANCES", "1"))
    config = load_config()
    bootstrap = config["KAFKA_BOOTSTRAP_SERVERS"]
    try:
        broker = start_unless_running(bootstrap, os.path.join(LOG_DIR, "kafka.log"))
    except KafkaNotStarted as exc:
        sys.exit(str(exc))
    if broker is not None:
        print("started the local Kafka broker (Tansu, memory only) at {}".format(bootstrap),
              flush=True)
    try:
        queues = declare_topology(config["AMQP_URI"])
    except OSError as exc:
        sys.exit("RabbitMQ does not answer at {} ({}): start it (make rabbitmq)".format(
            config["AMQP_URI"], exc))
    print("topology: {} declared handler queue(s) ready (contracts/services.py)".format(
        len(queues)), flush=True)
    env = dict(os.environ)
    # the venv's `nameko` first, whatever PATH the user has
    env["PATH"] = os.path.dirname(sys.executable) + os.pathsep + env.get("PATH", "")
    env.setdefault("PYTHONUNBUFFERED", "1")

    manager = MeshManager(printer=LogFilePrinter(LOG_DIR))
    processes = []  # (name, label, command)
    for service in DECLARATIONS:
        count = min(instances, service.max_instances or instances)
        for number in range(1, count + 1):
            label = service.name if count == 1 else "{}.{}".format(service.name, number)
            processes.append((service.name, label, service.command))
    # only nameko services serve metrics (plain processes, the aggregator, do not)
    plain = {service.name for service in DECLARATIONS if service.kind == PROCESS}
    ports = metrics_ports([label for name, label, _ in processes if name not in plain],
                          METRICS_BASE_PORT)
    for name, label, entry in processes:
        # 0 (off) for the others, whatever METRICS_PORT the launcher was given
        manager.add_process(label, entry, env=dict(env, METRICS_PORT=str(ports.get(label, 0))),
                            cwd=ROOT)
    if ports:
        write_targets(TARGETS_PATH, [(name, label, ports[label])
                                     for name, label, _ in processes if label in ports])
        print("metrics of {} processes on ports {}-{}; Prometheus targets in {}".format(
            len(ports), min(ports.values()), max(ports.values()),
            os.path.relpath(TARGETS_PATH, ROOT)), flush=True)

    watcher = threading.Thread(target=announce_when_healthy,
                               args=(gateway_url(config), manager), daemon=True)
    watcher.start()
    try:
        manager.loop()
    finally:
        if broker is not None:
            broker.stop()
    sys.exit(manager.returncode)


if __name__ == "__main__":
    main()
