"""Loading ``config.yaml`` outside ``nameko run`` (launcher, tests, benchmarks).

Uses nameko's own YAML loader, so ``${ENV_VAR:default}`` means exactly what it
means to ``nameko run --config config.yaml``.
"""
import os

import yaml
from nameko.cli.main import setup_yaml_parser

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
CONFIG_PATH = os.path.join(ROOT, "config.yaml")

_parser_ready = False


def load_config(path=CONFIG_PATH):
    """Return the config as ``nameko run`` would see it with today's environment.

        >>> load_config()["AMQP_URI"]
        'pyamqp://guest:guest@127.0.0.1:5672/'
    """
    global _parser_ready
    if not _parser_ready:
        setup_yaml_parser()
        _parser_ready = True
    with open(path) as handle:
        return yaml.safe_load(handle)


def as_bool(value):
    """A flag from config: YAML gives ``true``/``false`` as bool, an environment
    override may give text (``"false"``, ``"0"``)."""
    if isinstance(value, str):
        return value.strip().lower() in ("1", "true", "yes", "on")
    return bool(value)
