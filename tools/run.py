"""``make run``: start the whole mesh, wait until it is healthy, stop it cleanly.

    python -m tools.run            # what `make run` calls
    INSTANCES=2 python -m tools.run

Processes come from the services' declarations (``contracts.services``: the
``Procfile`` is generated from the same) and are run by honcho (one ``nameko
run`` each, output prefixed with its name). First the broker
(``tools.topology``): the exchanges and every declared handler's durable queue
(``common.topology``), so no event published before its handler's first start
is lost, and a RabbitMQ user per service (``common.broker_users``; passwords
kept in ``var/broker/passwords.json``): each process connects as its own,
never as ``AMQP_URI``'s, which only prepares the broker. On top of honcho this
adds what a user needs from one command: each process's output also goes to
``var/log/<name>.log``,
``INSTANCES`` instances of each service that may run more than once, and a
line with the gateway's URL once ``GET /health`` answers 200. Ctrl-C or SIGTERM
stops everything.

With ``KAFKA_TANSU`` (the default) it starts the local Tansu broker at
``KAFKA_BOOTSTRAP_SERVERS`` (memory only, ``var/log/kafka.log``), starts it
again if it dies (its log is gone then: the rebuilder gives billing's record
again, ``services.rebuilder``), and stops it at the end. A broker already
answering there is another mesh's (or one still stopping): it says so and
stops, unless ``KAFKA_ATTACH=true`` (a broker you started yourself, as the
benchmarks do). With ``KAFKA_TANSU=false`` it uses the Kafka it is given.
So does a gateway port already taken, or another launcher running from the
same folder (``var/run/launcher.pid``): it names them and stops, rather than
run a second mesh against the first one's broker and databases.

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
import signal
import sys
import threading
import time

from honcho.manager import Manager
from kafka.errors import KafkaError
from honcho.printer import Printer

from common.config import DEFAULT_WEB_SERVER_ADDRESS, ROOT, as_bool, auth_off, load_config
from contracts.services import DECLARATIONS, PROCESS
from contracts.topics import ensure_topics
from tools.issuer import EVERY_SCOPE, LocalIssuer, local_address, serve
from tools.local_kafka import KafkaNotStarted, LocalKafka, broker_answers
from tools.topology import BrokerNotReady, kept_passwords, prepare_broker
from tools.net import answers, split_address, wait_until_ok
from tools.processes import command_line, runs_module

LOG_DIR = os.environ.get("MESH_LOG_DIR", os.path.join(ROOT, "var", "log"))
HEALTH_WAIT_S = float(os.environ.get("MESH_HEALTH_WAIT", 120))
METRICS_BASE_PORT = int(os.environ.get("METRICS_BASE_PORT", 9400))
# beside the logs, so a launcher with a folder of its own (tests, benchmarks)
# leaves the user's file alone
TARGETS_PATH = os.path.join(os.path.dirname(LOG_DIR), "prometheus", "targets.json")
PID_PATH = os.path.join(os.path.dirname(LOG_DIR), "run", "launcher.pid")
ISSUER_FOLDER = os.path.join(os.path.dirname(LOG_DIR), "issuer")
PASSWORDS_PATH = os.path.join(os.path.dirname(LOG_DIR), "broker", "passwords.json")
BROKER_WATCH_S = 0.5


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
    address = str(config.get("WEB_SERVER_ADDRESS", DEFAULT_WEB_SERVER_ADDRESS))
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


def announce_when_healthy(url, manager, token=None):
    """Print the gateway's URL (and, with the local issuer, a token for the
    console and the README's calls) once ``/health`` answers 200; stop
    everything if it does not within ``MESH_HEALTH_WAIT`` seconds."""
    # every part up (analytics caught up with the seeded bills), not just a 200;
    # four answers in a row, so that with INSTANCES=2 both analytics instances
    # said so (RabbitMQ hands /health's calls to them in turn)
    healthy, last = wait_until_ok(url + "/health", HEALTH_WAIT_S, ready=all_parts_up,
                                  give_up=lambda: manager._terminating, interval=0.25,
                                  times=4)
    if healthy:
        print("billing-mesh is up: {}  (logs in {}; Ctrl-C stops it)".format(
            url, os.path.relpath(LOG_DIR, ROOT)), flush=True)
        if token:
            print("  the console, with a token: {}/#token={}\n"
                  "  a token for curl (every scope, 12 h; fewer: make token SCOPES=\"bills:read\"):\n"
                  "export TOKEN={}".format(url, token, token), flush=True)
    elif not manager._terminating:
        print("billing-mesh did not become healthy within {:.0f} s ({}); see {}".format(
            HEALTH_WAIT_S, last, LOG_DIR), flush=True)
        manager.terminate()


def another_mesh(config, pid_path=PID_PATH):
    """Why this launcher must not start (another mesh, or what is left of one,
    holds its folder or ports), or None."""
    try:
        with open(pid_path) as handle:
            pid = int(handle.read().strip() or 0)
    except (OSError, ValueError):
        pid = 0
    if pid and pid != os.getpid() and os.path.exists("/proc/{}".format(pid)):
        return ("another `make run` (pid {}) runs from this folder: stop it (Ctrl-C in its "
                "terminal) first".format(pid))
    url = gateway_url(config)
    if answers(*split_address(url.split("//", 1)[1]), timeout=0.5):
        return ("something already listens at {} (another mesh's gateway?): stop it, or set "
                "WEB_SERVER_ADDRESS".format(url))
    bootstrap = config["KAFKA_BOOTSTRAP_SERVERS"]
    if as_bool(config["KAFKA_TANSU"]) and not as_bool(os.environ.get("KAFKA_ATTACH", "false")) \
            and broker_answers(bootstrap):
        return ("a Kafka broker already answers at {} (another mesh's local broker, or one "
                "still stopping): stop it, set KAFKA_BOOTSTRAP_SERVERS, or KAFKA_ATTACH=true "
                "to use it".format(bootstrap))
    return None


def descendants(root):
    """pids of every process below ``root`` (read from /proc)."""
    children = {}
    for pid in filter(str.isdigit, os.listdir("/proc")):
        try:
            with open("/proc/{}/stat".format(pid)) as handle:
                parent = int(handle.read().rsplit(")", 1)[1].split()[1])
        except (OSError, ValueError, IndexError):
            continue
        children.setdefault(parent, []).append(int(pid))
    found, todo = [], [root]
    while todo:
        for child in children.get(todo.pop(), ()):
            found.append(child)
            todo.append(child)
    return found


def restart_kafka_processes():
    """SIGHUP to the mesh's plain Kafka processes (the aggregator): each
    starts its worker again, whose client does not come through a broker
    that came back empty (``streams/__main__.py``)."""
    modules = [service.module_path for service in DECLARATIONS
               if service.kind == PROCESS and service.kafka]
    for pid in descendants(os.getpid()):
        argv = command_line(pid)
        if any(runs_module(argv, module) for module in modules) and "--worker" not in argv:
            os.kill(pid, signal.SIGHUP)


def keep_broker_running(broker, manager, partitions):
    """Start the local broker again whenever it dies, until the mesh stops."""
    while not manager._terminating:
        if broker.process.poll() is not None and not manager._terminating:
            print("the local Kafka broker stopped (exit code {}); starting it again: memory "
                  "only, so the rebuilder will give billing's record again".format(
                      broker.process.returncode), flush=True)
            try:
                broker.start()
                ensure_topics(broker.bootstrap, tansu=True, partitions=partitions)
            except (KafkaNotStarted, KafkaError) as exc:
                print(exc, flush=True)
            else:
                restart_kafka_processes()
        time.sleep(BROKER_WATCH_S)


def start_token_issuer(config):
    """``(server or None, token or None)``: with ``AUTH_ISSUER`` on this machine,
    the local issuer (``tools.issuer``, its keys in ``var/issuer``) serving
    there, unless one already answers, and a token with every scope."""
    if auth_off(config):
        print("AUTH=off: the gateway checks no token (meant for the test suite only)",
              flush=True)
        return None, None
    address = local_address(config)
    if address is None:
        print("tokens: from {} (audience {})".format(config["AUTH_ISSUER"],
                                                     config["AUTH_AUDIENCE"]), flush=True)
        return None, None
    issuer = LocalIssuer(ISSUER_FOLDER, "http://" + address)
    host, port = split_address(address)
    server = None
    if answers(host, port):
        print("a token issuer already answers at {}: the token below is signed with the "
              "keys in {}".format(issuer.url, os.path.relpath(ISSUER_FOLDER, ROOT)), flush=True)
    else:
        server = serve(issuer, host, port)
        print("started the local token issuer at {} (keys in {})".format(
            issuer.url, os.path.relpath(ISSUER_FOLDER, ROOT)), flush=True)
    subject = os.environ.get("USER") or "developer"
    return server, issuer.token(subject, EVERY_SCOPE, audience=config["AUTH_AUDIENCE"])


def write_pid(path):
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "w") as handle:
        handle.write(str(os.getpid()))


def main():
    instances = int(os.environ.get("INSTANCES", "1"))
    config = load_config()
    refusal = another_mesh(config)
    if refusal:
        sys.exit("make run: " + refusal)
    write_pid(PID_PATH)
    bootstrap = config["KAFKA_BOOTSTRAP_SERVERS"]
    partitions = int(config["KAFKA_PARTITIONS"])
    broker = None
    if as_bool(config["KAFKA_TANSU"]) and not broker_answers(bootstrap):
        try:
            broker = LocalKafka(bootstrap, os.path.join(LOG_DIR, "kafka.log")).start()
        except KafkaNotStarted as exc:
            sys.exit(str(exc))
        # the topics, with their settings, before any process: none of them then
        # creates one by producing to it
        ensure_topics(bootstrap, tansu=True, partitions=partitions)
        print("started the local Kafka broker (Tansu, memory only) at {}".format(bootstrap),
              flush=True)
    try:
        queues, broker_uris = prepare_broker(config, kept_passwords(PASSWORDS_PATH))
    except BrokerNotReady as exc:
        if broker is not None:
            broker.stop()
        sys.exit("make run: {}".format(exc))
    print("topology: {} declared handler queue(s) ready, a RabbitMQ user for each of {} "
          "(contracts/services.py)".format(len(queues), len(broker_uris)), flush=True)
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
    # each process logs in as its service's user (common.broker_users)
    process_env = {name: dict(env, AMQP_URI=uri) for name, uri in broker_uris.items()}
    # only nameko services serve metrics (plain processes, the aggregator, do not)
    plain = {service.name for service in DECLARATIONS if service.kind == PROCESS}
    ports = metrics_ports([label for name, label, _ in processes if name not in plain],
                          METRICS_BASE_PORT)
    for name, label, entry in processes:
        # 0 (off) for the others, whatever METRICS_PORT the launcher was given
        manager.add_process(label, entry, env=dict(process_env.get(name, env),
                                                   METRICS_PORT=str(ports.get(label, 0))),
                            cwd=ROOT)
    if ports:
        write_targets(TARGETS_PATH, [(name, label, ports[label])
                                     for name, label, _ in processes if label in ports])
        print("metrics of {} processes on ports {}-{}; Prometheus targets in {}".format(
            len(ports), min(ports.values()), max(ports.values()),
            os.path.relpath(TARGETS_PATH, ROOT)), flush=True)

    issuer_server, token = start_token_issuer(config)
    watcher = threading.Thread(target=announce_when_healthy,
                               args=(gateway_url(config), manager, token), daemon=True)
    watcher.start()
    if broker is not None:
        threading.Thread(target=keep_broker_running, args=(broker, manager, partitions),
                         daemon=True).start()
    try:
        manager.loop()
    finally:
        if broker is not None:
            broker.stop()
        if issuer_server is not None:
            issuer_server.shutdown()
        try:
            os.remove(PID_PATH)
        except OSError:
            pass
    sys.exit(manager.returncode)


if __name__ == "__main__":
    main()
