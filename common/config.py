"""Loading ``config.yaml`` outside ``nameko run`` (launcher, tests, benchmarks,
the aggregator).

``${ENV_VAR:default}`` means here what it means to ``nameko run --config
config.yaml``: the variable's value, else the default, read again as YAML
(``${MAX_WORKERS:10}`` is the number 10). nameko's own loader changes
``yaml.SafeLoader`` for the whole process (every later ``yaml.safe_load``
would expand variables), so this one is a loader class of its own;
``tests/unit/test_config.py`` checks both read config.yaml alike.
"""
import os
import re

import yaml

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
CONFIG_PATH = os.path.join(ROOT, "config.yaml")
# where the gateway and the metrics listen when nothing says: this machine only
# (nameko's own default, 0.0.0.0:8000, serves every network the machine is on)
DEFAULT_WEB_SERVER_ADDRESS = "127.0.0.1:8000"
DEFAULT_METRICS_ADDRESS = "127.0.0.1"

ENV_VAR = re.compile(r"\$\{([^}:\s]+):?([^}]+)?\}")
HAS_ENV_VAR = re.compile(r".*\$\{.*\}.*")


class ConfigLoader(yaml.SafeLoader):
    """``yaml.SafeLoader`` plus ``${ENV_VAR:default}`` in plain scalars."""


def _expand(match):
    name, default = match.groups()
    return os.environ.get(name, default or "")


def _env_var_scalar(loader, node):
    raw = loader.construct_scalar(node)
    value = ENV_VAR.sub(_expand, raw)
    return value if value == raw else yaml.safe_load(value)


ConfigLoader.add_constructor("!env_var", _env_var_scalar)
ConfigLoader.add_implicit_resolver("!env_var", HAS_ENV_VAR, None)


def load_config(path=CONFIG_PATH):
    """Return the config as ``nameko run`` would see it with today's environment.

        >>> load_config()["AMQP_URI"]
        'pyamqp://guest:guest@127.0.0.1:5672/'
    """
    with open(path) as handle:
        return yaml.load(handle, Loader=ConfigLoader)  # noqa: S506  a SafeLoader


def database_variable(service):
    """The environment variable that names ``service``'s database.

        >>> database_variable("billing")
        'BILLING_DB_URI'
    """
    return "{}_DB_URI".format(service.upper())


def database_uri(config, service):
    """The database of a declared service (``contracts.services``: ``database=True``):
    ``DB_URIS[service]`` in the config when given, else the environment's
    ``<SERVICE>_DB_URI``, else SQLite at ``<DATA_DIR>/<service>.db`` (``DATA_DIR``
    relative to the repository root unless absolute).

        >>> database_uri({"DATA_DIR": "/tmp/run1"}, "billing")
        'sqlite:////tmp/run1/billing.db'
    """
    given = (config.get("DB_URIS") or {}).get(service)
    if given:
        return given
    from_env = os.environ.get(database_variable(service))
    if from_env:
        return from_env
    folder = os.path.join(ROOT, str(config.get("DATA_DIR") or "var"))
    return "sqlite:///{}".format(os.path.join(folder, "{}.db".format(service)))


def seconds_setting(config, key, default, at_least=0.0):
    """A positive number of seconds from the config (at least ``at_least``),
    checked where it is read, at start.

        >>> seconds_setting({"INBOX_RETENTION_S": "600"}, "INBOX_RETENTION_S", 3600)
        600.0
    """
    value = float(config.get(key, default))
    if value <= 0 or value < at_least:
        raise ValueError("{} must be at least {} seconds (is {})".format(
            key, max(at_least, 0), value))
    return value


def auth_off(config):
    """``AUTH=off``: the gateway checks no token (the test suite's fixtures only)."""
    return not as_bool(config.get("AUTH", True))


def as_bool(value):
    """A flag from config: YAML gives ``true``/``false`` as bool, an environment
    override may give text (``"false"``, ``"0"``)."""
    if isinstance(value, str):
        return value.strip().lower() in ("1", "true", "yes", "on")
    return bool(value)
