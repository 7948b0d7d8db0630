"""Static checks of docker-compose.yml and the Dockerfile (no Docker engine needed).

They catch the drift that only shows once the stack is started: a service the
Procfile runs but compose forgets, an environment variable config.yaml never
reads, a depends_on on a service that does not exist or cannot become healthy,
an image that lacks what the commands use.
"""
import glob
import json
import os
import re

import pytest
import yaml

from common.broker_users import password_variable
from common.config import database_variable
from contracts.services import DATABASE_SERVICES

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
COMPOSE_PATH = os.path.join(ROOT, "docker-compose.yml")
DOCKERFILE_PATH = os.path.join(ROOT, "Dockerfile")
CONFIG_PATH = os.path.join(ROOT, "config.yaml")
PROCFILE_PATH = os.path.join(ROOT, "Procfile")

NAMEKO_MODULE = re.compile(r"\bnameko\s+run\b.*?\bservices\.([A-Za-z_][A-Za-z0-9_]*)\b")
CONFIG_FILE_OPTION = re.compile(r"--config(?:\s+|=)(\S+)")
INFRASTRUCTURE = ("rabbitmq", "postgres", "kafka")
DEPENDS_ON_CONDITIONS = ("service_healthy", "service_started", "service_completed_successfully")


def read(path):
    with open(path) as handle:
        return handle.read()


@pytest.fixture(scope="module")
def compose():
    assert os.path.exists(COMPOSE_PATH), "docker-compose.yml is missing at {}".format(COMPOSE_PATH)
    try:
        data = yaml.safe_load(read(COMPOSE_PATH))
    except yaml.YAMLError as exc:
        pytest.fail("docker-compose.yml is not valid YAML: {}".format(exc))
    assert isinstance(data, dict), "docker-compose.yml should be a mapping, got {!r}".format(type(data))
    return data


@pytest.fixture(scope="module")
def services(compose):
    services = compose.get("services")
    assert isinstance(services, dict) and services, \
        "docker-compose.yml has no `services:` mapping"
    return services


def command_text(service):
    command = service.get("command") or ""
    if isinstance(command, list):
        command = " ".join(str(part) for part in command)
    return str(command)


@pytest.fixture(scope="module")
def nameko_services(services):
    """{compose service name: module X of `nameko run ... services.X`}."""
    found = {}
    for name, service in services.items():
        command = command_text(service or {})
        if "nameko run" not in " ".join(command.split()):
            continue
        match = NAMEKO_MODULE.search(command)
        assert match, "compose service {!r} runs `{}` without naming a services.<module>".format(
            name, command)
        found[name] = match.group(1)
    assert found, "no compose service runs `nameko run`"
    return found


def environment_of(service):
    """The environment a compose service sets, as {name: value}."""
    environment = service.get("environment") or {}
    if isinstance(environment, list):
        pairs = (item.split("=", 1) for item in environment)
        environment = {pair[0]: (pair[1] if len(pair) > 1 else None) for pair in pairs}
    assert isinstance(environment, dict), "unexpected environment format: {!r}".format(environment)
    return {str(key): (None if value is None else str(value)) for key, value in environment.items()}


@pytest.fixture(scope="module")
def config_variables():
    """Names config.yaml reads as ${NAME...}, comments left out, and the
    ``<SERVICE>_DB_URI`` of each service declared with a database (read by
    ``common.config.database_uri``)."""
    lines = [line for line in read(CONFIG_PATH).splitlines() if not line.lstrip().startswith("#")]
    names = set(re.findall(r"\$\{([A-Za-z_][A-Za-z0-9_]*)", "\n".join(lines)))
    assert names, "config.yaml reads no ${NAME:default} variables at all"
    return names | {database_variable(name) for name in DATABASE_SERVICES}


def procfile_processes():
    processes = {}
    for line in read(PROCFILE_PATH).splitlines():
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        name, separator, command = line.partition(":")
        assert separator, "Procfile line without `name: command`: {!r}".format(line)
        processes[name.strip()] = command.strip()
    return processes


def test_compose_file_parses_with_infrastructure_and_services(services, nameko_services):
    missing = [name for name in INFRASTRUCTURE if name not in services]
    assert not missing, "docker-compose.yml defines no {} service(s)".format(missing)
    for name in nameko_services:
        assert services[name].get("build") or services[name].get("image"), \
            "compose service {!r} has neither build nor image".format(name)


def test_named_volumes_are_declared(compose, services):
    declared = set(compose.get("volumes") or {})
    for name, service in services.items():
        for volume in (service or {}).get("volumes") or []:
            source = volume.get("source") if isinstance(volume, dict) else str(volume).split(":")[0]
            if not source or source.startswith((".", "/", "~", "$")):
                continue  # a bind mount, not a named volume
            assert source in declared, (
                "compose service {!r} mounts named volume {!r}, which the top-level "
                "`volumes:` does not declare (it declares {})".format(name, source, sorted(declared)))


def test_nameko_commands_name_existing_modules(nameko_services):
    for name, module in nameko_services.items():
        path = os.path.join(ROOT, "services", module + ".py")
        assert os.path.isfile(path), \
            "compose service {!r} runs services.{} but {} does not exist".format(name, module, path)


def test_nameko_commands_use_an_existing_config_file(services, nameko_services):
    for name in nameko_services:
        command = command_text(services[name])
        match = CONFIG_FILE_OPTION.search(command)
        assert match, "compose service {!r} runs nameko without --config: `{}`".format(name, command)
        assert os.path.isfile(os.path.join(ROOT, match.group(1))), \
            "compose service {!r} uses --config {} which does not exist in the repository".format(
                name, match.group(1))


def without_environment_prefix(command):
    """`VAR=value nameko run ...` -> `nameko run ...` (compose sets variables itself)."""
    words = command.split()
    while words and re.match(r"^[A-Za-z_][A-Za-z0-9_]*=", words[0]):
        words.pop(0)
    return " ".join(words)


def test_every_procfile_process_runs_in_compose(services):
    for name, command in procfile_processes().items():
        assert name in services, "the Procfile's {!r} has no compose service".format(name)
        want = without_environment_prefix(command)
        got = " ".join(command_text(services[name]).split())
        assert got == want, "compose service {!r} runs `{}` but the Procfile runs `{}`".format(
            name, got, want)


def test_nameko_services_are_procfile_processes(nameko_services):
    extra = set(nameko_services) - set(procfile_processes())
    assert not extra, "compose runs nameko services the Procfile does not: {}".format(sorted(extra))


def test_environment_variables_are_read_by_config(services, config_variables):
    for name in procfile_processes():
        unknown = sorted(set(environment_of(services[name])) - config_variables)
        assert not unknown, (
            "compose service {!r} sets {} which config.yaml never reads as ${{NAME:...}} "
            "(it reads {})".format(name, unknown, sorted(config_variables)))


def test_each_service_gets_only_its_own_database(services, nameko_services, config_variables):
    for name in nameko_services:
        environment = environment_of(services[name])
        own = database_variable(name)
        foreign = sorted(key for key in environment if key.endswith("_DB_URI") and key != own)
        assert not foreign, (
            "compose service {!r} sets {}, but the only database variable it reads is {}".format(
                name, foreign, own))
        if name in DATABASE_SERVICES:
            assert environment.get(own), (
                "compose service {!r} does not set {}: it would fall back to a SQLite file "
                "inside its container".format(name, own))


def test_each_service_has_a_database_of_its_own(services, nameko_services):
    """Each service owns its own database (docs/architecture.md), created by the init script."""
    created = set(re.findall(r"CREATE DATABASE (\w+)", read(os.path.join(ROOT, "docker", "postgres-init.sql"))))
    mounts = " ".join(services["postgres"].get("volumes", []))
    assert "postgres-init.sql:/docker-entrypoint-initdb.d/" in mounts, \
        "postgres does not mount docker/postgres-init.sql into docker-entrypoint-initdb.d"
    databases = {}
    for name in nameko_services:
        for key, value in environment_of(services[name]).items():
            if key.endswith("_DB_URI"):
                databases[name] = value.rsplit("/", 1)[-1]
    assert len(set(databases.values())) == len(databases), \
        "services share a database: {}".format(databases)
    missing = {name: db for name, db in databases.items() if db not in created}
    assert not missing, "databases not created by docker/postgres-init.sql: {}".format(missing)


def test_uris_point_at_compose_services(services, nameko_services):
    for name in nameko_services:
        for key, value in environment_of(services[name]).items():
            match = re.match(r"^[A-Za-z][A-Za-z0-9+.-]*://(?:[^@/]*@)?([^:/]+)", value or "")
            if not match:
                continue
            host = match.group(1)
            hint = (" (inside a container, {} is the container itself)".format(host)
                    if host in ("127.0.0.1", "localhost", "::1") else "")
            assert host in services, (
                "compose service {!r} sets {}={} whose host {!r} is not a compose service{}".format(
                    name, key, value, host, hint))


def test_depends_on_names_defined_services_with_a_condition(services):
    for name, service in services.items():
        depends_on = (service or {}).get("depends_on")
        if depends_on is None:
            continue
        assert isinstance(depends_on, dict), (
            "compose service {!r} lists depends_on without conditions ({!r}); use "
            "`<service>: {{condition: service_healthy|service_started}}`".format(name, depends_on))
        for target, options in depends_on.items():
            assert target in services, \
                "compose service {!r} depends on {!r}, which is not defined".format(name, target)
            condition = (options or {}).get("condition")
            assert condition in DEPENDS_ON_CONDITIONS, (
                "compose service {!r} depends on {!r} with condition {!r}; expected one of {}".format(
                    name, target, condition, DEPENDS_ON_CONDITIONS))
            if condition == "service_healthy":
                assert (services[target] or {}).get("healthcheck"), (
                    "compose service {!r} waits for {!r} to be healthy, but {!r} has no "
                    "healthcheck, so it never will be".format(name, target, target))


@pytest.mark.parametrize("name", INFRASTRUCTURE)
def test_infrastructure_has_healthcheck(services, name):
    assert name in services, "docker-compose.yml defines no {!r} service".format(name)
    healthcheck = (services[name] or {}).get("healthcheck") or {}
    test = healthcheck.get("test")
    assert test and test != ["NONE"], "compose service {!r} has no healthcheck test".format(name)


def test_gateway_listens_on_all_interfaces_and_publishes_its_port(services, nameko_services):
    gateways = [name for name, module in nameko_services.items() if module == "gateway"]
    assert gateways, "no compose service runs services.gateway"
    gateway = services[gateways[0]]
    address = environment_of(gateway).get("WEB_SERVER_ADDRESS") or ""
    host, _, port = address.rpartition(":")
    assert host == "0.0.0.0" and port.isdigit(), (
        "the gateway's WEB_SERVER_ADDRESS is {!r}; it must be 0.0.0.0:<port> to be reachable "
        "from outside its container".format(address))
    published = [str(item).split(":")[-1].split("/")[0] for item in gateway.get("ports") or []]
    assert port in published, "the gateway listens on {} but publishes only {}".format(
        port, published)


def dockerfile_instructions():
    """[(INSTRUCTION, arguments)] with line continuations joined, comments dropped."""
    text = re.sub(r"\\\n", " ", read(DOCKERFILE_PATH))
    instructions = []
    for line in text.splitlines():
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        instruction, _, arguments = line.partition(" ")
        instructions.append((instruction.upper(), arguments.strip()))
    return instructions


def test_dockerfile_installs_what_the_commands_need():
    assert os.path.isfile(DOCKERFILE_PATH), "Dockerfile is missing at {}".format(DOCKERFILE_PATH)
    instructions = dockerfile_instructions()
    froms = [arguments for instruction, arguments in instructions if instruction == "FROM"]
    # a Python that pyproject's requires-python admits (3.11 to 3.13)
    assert froms and froms[-1].split("-")[0] in ("python:3.11", "python:3.12", "python:3.13"), \
        "the Dockerfile should build FROM python:3.11 to 3.13 (pyproject), got {}".format(froms)

    copied = set()
    for instruction, arguments in instructions:
        if instruction in ("COPY", "ADD"):
            parts = [part for part in arguments.split() if not part.startswith("--")]
            copied.update(re.sub(r"^(\./)+", "", part).rstrip("/") or "." for part in parts[:-1])
    needed = {"requirements.txt", "pyproject.toml", "config.yaml", "Procfile", "mesh", "services"}
    if "." not in copied:
        assert needed <= copied, "the Dockerfile does not copy {}".format(sorted(needed - copied))

    runs = " && ".join(arguments for instruction, arguments in instructions if instruction == "RUN")
    assert re.search(r"pip install\b[^&;]*\s-r\s+\S*requirements\.txt", runs), \
        "the Dockerfile never runs `pip install -r requirements.txt`"
    assert re.search(r"pip install\b[^&;]*--no-deps[^&;]*\s\.(\s|$)", runs), \
        "the Dockerfile never installs the project itself (`pip install --no-deps .`)"
    workdirs = [arguments for instruction, arguments in instructions if instruction == "WORKDIR"]
    assert workdirs and workdirs[-1] == "/app", \
        "the Dockerfile's WORKDIR should be /app (where config.yaml is), got {}".format(workdirs)


# --- metrics: Prometheus and Grafana (docker/prometheus, docker/grafana) ----------

PROMETHEUS_PATH = os.path.join(ROOT, "docker", "prometheus", "prometheus.yml")
GRAFANA_DIR = os.path.join(ROOT, "docker", "grafana")
DASHBOARD_PATH = os.path.join(GRAFANA_DIR, "dashboards", "billing-mesh.json")
METRICS_PORT = "9100"
# a tag naming a version: not `latest`, not a bare major
PINNED_TAG = re.compile(r"^[^:@\s]+:v?\d+\.\d+\.\d+$")


def mounts(service):
    """{container path: host path} of a compose service's bind mounts."""
    found = {}
    for volume in service.get("volumes") or []:
        source, _, rest = str(volume).partition(":")
        target = rest.split(":")[0]
        if source.startswith("."):
            found[target] = os.path.normpath(os.path.join(ROOT, source))
    return found


@pytest.fixture(scope="module")
def prometheus_config():
    assert os.path.isfile(PROMETHEUS_PATH), "{} is missing".format(PROMETHEUS_PATH)
    return yaml.safe_load(read(PROMETHEUS_PATH))


@pytest.mark.parametrize("name", ["prometheus", "grafana"])
def test_prometheus_and_grafana_run_pinned_images(services, name):
    assert name in services, "docker-compose.yml defines no {!r} service".format(name)
    image = str(services[name].get("image") or "")
    assert PINNED_TAG.match(image), \
        "compose service {!r} runs image {!r}: pin an exact version tag".format(name, image)


def test_prometheus_reads_the_repository_config_read_only_and_publishes_9090(services):
    prometheus = services["prometheus"]
    assert mounts(prometheus).get("/etc/prometheus/prometheus.yml") == PROMETHEUS_PATH, \
        "prometheus does not mount docker/prometheus/prometheus.yml as its config"
    assert any(str(v).endswith("prometheus.yml:ro") for v in prometheus["volumes"]), \
        "prometheus.yml is not mounted read-only"
    assert "9090:9090" in [str(port) for port in prometheus.get("ports") or []]
    assert "3000:3000" in [str(port) for port in services["grafana"].get("ports") or []]


def test_every_nameko_service_serves_metrics_and_prometheus_scrapes_each_replica(
        services, nameko_services, prometheus_config):
    """One job per Procfile nameko service, found by Docker's DNS (one A record
    per replica) on the port the service's METRICS_PORT says."""
    jobs = {job["job_name"]: job for job in prometheus_config["scrape_configs"]}
    for name in nameko_services:
        assert environment_of(services[name]).get("METRICS_PORT") == METRICS_PORT, (
            "compose service {!r} does not set METRICS_PORT: {!r} (Prometheus scrapes "
            "{})".format(name, METRICS_PORT, METRICS_PORT))
        assert environment_of(services[name]).get("METRICS_ADDRESS") == "0.0.0.0", (
            "compose service {!r} must set METRICS_ADDRESS: 0.0.0.0: its metrics listen on "
            "127.0.0.1 by default, out of Prometheus' reach".format(name))
        assert name in jobs, "prometheus.yml has no job for the nameko service {!r}".format(name)
        [discovery] = jobs[name].get("dns_sd_configs") or [None]
        assert discovery and discovery.get("names") == [name] and discovery.get("type") == "A" \
            and str(discovery.get("port")) == METRICS_PORT, (
                "job {!r} should find {!r}'s replicas by DNS: dns_sd_configs [{{names: [{}], "
                "type: A, port: {}}}], got {!r}".format(name, name, name, METRICS_PORT, discovery))
    procfile_nameko = {name for name, command in procfile_processes().items()
                       if "nameko run" in command}
    assert procfile_nameko <= set(nameko_services), procfile_nameko - set(nameko_services)


def test_grafana_datasource_is_the_prometheus_service_and_dashboards_are_provisioned(services):
    grafana = services["grafana"]
    mounted = mounts(grafana)
    assert mounted.get("/etc/grafana/provisioning") == os.path.join(GRAFANA_DIR, "provisioning")
    datasources = [source for path in glob.glob(os.path.join(
        GRAFANA_DIR, "provisioning", "datasources", "*.y*ml"))
        for source in yaml.safe_load(read(path))["datasources"]]
    [prometheus] = [source for source in datasources if source["type"] == "prometheus"]
    host = re.match(r"^https?://([^:/]+):(\d+)", prometheus["url"])
    assert host and host.group(1) == "prometheus" and host.group(1) in services \
        and host.group(2) == "9090", prometheus["url"]

    providers = [provider for path in glob.glob(os.path.join(
        GRAFANA_DIR, "provisioning", "dashboards", "*.y*ml"))
        for provider in yaml.safe_load(read(path))["providers"]]
    assert [provider["options"]["path"] for provider in providers] == ["/var/lib/grafana/dashboards"]
    assert mounted.get("/var/lib/grafana/dashboards") == os.path.dirname(DASHBOARD_PATH)
    dashboard = json.loads(read(DASHBOARD_PATH))
    uids = {target["datasource"]["uid"] for panel in dashboard["panels"]
            for target in panel["targets"]} | {panel["datasource"]["uid"]
                                               for panel in dashboard["panels"]}
    assert uids == {prometheus["uid"]}, "the dashboard's datasources {} are not {}".format(
        uids, prometheus["uid"])


def defined_metric_names():
    """Every sample name this process's registry exports (mesh.metrics), as
    queries name them: counters with _total, histograms' _bucket, _sum, _count."""
    from prometheus_client.parser import text_string_to_metric_families
    from mesh.metrics import metrics_text
    suffixes = {"counter": ("_total",), "histogram": ("_bucket", "_sum", "_count")}
    names = set()
    for family in text_string_to_metric_families(metrics_text()[0].decode()):
        names.update(family.name + suffix for suffix in suffixes.get(family.type, ("",)))
    return names


def test_dashboard_queries_only_metrics_that_mesh_metrics_defines():
    dashboard = json.loads(read(DASHBOARD_PATH))
    panels = {panel["title"]: [target["expr"] for target in panel["targets"]]
              for panel in dashboard["panels"]}
    assert all(panels.values()), "panels without queries: {}".format(
        [title for title, exprs in panels.items() if not exprs])
    defined = defined_metric_names()
    used = {name for exprs in panels.values() for expr in exprs
            for name in re.findall(r"\b((?:mesh|process|python)_[a-z0-9_]+)\b", expr)}
    unknown = sorted(used - defined)
    assert not unknown, "the dashboard queries metrics mesh/metrics.py does not export: {}".format(
        unknown)
    # the panels the issue asks for
    for metric in ("mesh_rpc_calls_total", "mesh_rpc_errors_total",
                   "mesh_rpc_duration_seconds_bucket", "mesh_busy_workers",
                   "mesh_http_requests_total", "mesh_outbox_backlog", "mesh_kafka_consumer_lag"):
        assert metric in used, "no panel queries {}".format(metric)


def test_the_metric_name_check_can_fail():
    """The check above reads names out of the registry: a made-up one is not there."""
    defined = defined_metric_names()
    assert "mesh_rpc_calls_total" in defined and "mesh_rpc_duration_seconds_bucket" in defined
    # a typo, and a histogram by its bare name (no such series in Prometheus)
    assert "mesh_rpc_call_total" not in defined and "mesh_rpc_duration_seconds" not in defined


def test_each_service_logs_in_to_rabbitmq_as_its_own_user(services, nameko_services):
    """The topology service makes a user per service (``--users``, with each
    one's password), every nameko service logs in as its own with the same
    password, and nothing is left on RabbitMQ's ``guest`` (docs/security.md)."""
    topology = services["topology"]
    assert "--users" in str(topology.get("command")), topology.get("command")
    passwords = environment_of(topology)
    for name, module in nameko_services.items():
        uri = environment_of(services[name]).get("AMQP_URI", "")
        match = re.match(r"^pyamqp://([^:@]+):([^@]+)@rabbitmq:5672/$", uri)
        assert match and match.group(1) == module, (
            "compose service {!r} logs in to RabbitMQ as {!r}, not as its own user {!r}".format(
                name, uri, module))
        assert match.group(2) == passwords.get(password_variable(module)), (
            "compose service {!r}'s password {} is not the one the topology service gives "
            "its user ({})".format(name, match.group(2), password_variable(module)))
    assert "guest" not in read(COMPOSE_PATH), "docker-compose.yml still uses guest"
    rabbitmq = environment_of(services["rabbitmq"])
    assert rabbitmq.get("RABBITMQ_DEFAULT_USER") not in (None, "guest"), rabbitmq
