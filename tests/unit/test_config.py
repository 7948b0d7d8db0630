"""The config loader (``common.config``) and import-time side effects: none."""
import json
import os
import subprocess
import sys

import yaml

from common.config import CONFIG_PATH, ROOT, load_config

OVERRIDES = {"MAX_WORKERS": "7", "GATEWAY_CACHE": "false", "KAFKA_BOOTSTRAP_SERVERS": "kafka:9092",
             "ADMIN_TOKEN": "", "RPC_TIMEOUT": "2.5"}


def run_python(code, env=None):
    """Run ``code`` in a fresh interpreter of this venv; its stdout."""
    result = subprocess.run([sys.executable, "-W", "ignore", "-c", code], cwd=ROOT,
                            env=dict(os.environ, **(env or {})),
                            capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    return result.stdout


def test_reads_config_yaml_as_nameko_run_does(monkeypatch):
    """Same values, same types, with and without environment overrides."""
    nameko_reads = (
        "import json, yaml\n"
        "from nameko.cli.main import setup_yaml_parser\n"
        "setup_yaml_parser()\n"
        "print(json.dumps(yaml.safe_load(open({!r}))))".format(CONFIG_PATH))
    for env in ({}, OVERRIDES):
        for name, value in env.items():
            monkeypatch.setenv(name, value)
        assert load_config() == json.loads(run_python(nameko_reads, env))
    assert load_config()["max_workers"] == 7 and load_config()["GATEWAY_CACHE"] is False


def test_leaves_yaml_safe_loader_alone():
    """(``nameko test`` itself changes SafeLoader before the tests run: compare.)"""
    def state():
        return (dict(yaml.SafeLoader.yaml_implicit_resolvers),
                dict(yaml.SafeLoader.yaml_constructors))
    before = state()
    load_config()
    assert state() == before
    fresh = run_python("import yaml, common.config\ncommon.config.load_config()\n"
                       "print(yaml.safe_load('a: ${HOME:x}'))")
    assert fresh.strip() == "{'a': '${HOME:x}'}"


def test_importing_the_project_changes_no_global_state():
    """Importing every module leaves logging's record factory and yaml's
    SafeLoader as they were: tracing and config are set up where a process
    starts, not on import."""
    print_state = (
        "import logging, yaml\n"
        "state = lambda: (logging.getLogRecordFactory(), "
        "dict(yaml.SafeLoader.yaml_implicit_resolvers), dict(yaml.SafeLoader.yaml_constructors))\n"
        "before = state()\n"
        "import common.config, mesh.tracing, mesh.http, mesh.service, services.gateway, "
        "services.billing, services.customers, services.inventory, services.analytics, "
        "services.kafka_bridge, streams.app, tools.run\n"
        "common.config.load_config()\n"
        "print(state() == before)\n")
    assert run_python(print_state).strip() == "True"
