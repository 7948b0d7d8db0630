"""One id follows a request through the mesh: ``grep <id> var/log/*.log``.

The gateway takes the caller's ``X-Request-ID`` (or makes one), answers it in
the response, and puts it in nameko's context data, which travels with every RPC
call and event the request causes. Each worker keeps it in a ``contextvars``
variable (greenlet 3 gives every greenthread its own context, and an asyncio
task started by a worker copies it: ``mesh.coroutines``), and every log record
gets it as ``%(request_id)s`` (``-`` outside a request). So does who asked:
the subject of the request's token (``mesh.auth``), ``%(caller)s``. The worker's deadline
is kept the same way, for coroutines to run within it.
``Tracing`` also logs one line per RPC handled, like an HTTP access log.

Nothing happens on import: ``Tracing.setup`` (when a service starts) installs
the log record factory, and config.yaml's formatter (``RequestIdFormatter``)
prints ``-`` for lines logged before that.
"""
import contextvars
import logging
import time
import uuid

from nameko.extensions import DependencyProvider
from nameko.rpc import Rpc

from common.config import as_bool
from contracts.headers import CALLER_KEY, DEADLINE_KEY, REQUEST_ID_KEY, VALID_REQUEST_ID


log = logging.getLogger("mesh.rpc.access")
_request_id = contextvars.ContextVar("mesh_request_id", default=None)
_caller = contextvars.ContextVar("mesh_caller", default=None)
_deadline = contextvars.ContextVar("mesh_deadline", default=None)


def current_request_id():
    return _request_id.get()


def set_request_id(request_id):
    _request_id.set(request_id)


def current_caller():
    """Who asked for what this worker does: the subject of the gateway
    request's token (``mesh.auth``), or None (no token, or not from a request)."""
    return _caller.get()


def set_caller(subject):
    _caller.set(subject)


def current_deadline():
    """The deadline (epoch seconds) of the call this worker handles, or None."""
    return _deadline.get()


def request_id_from(header_value):
    """The caller's id if it is sane, else a new one."""
    if header_value and VALID_REQUEST_ID.match(header_value):
        return header_value
    return uuid.uuid4().hex


def install_request_id_records():
    """Give every log record, whatever handler formats it, ``request_id``
    (once per process; called when a service starts)."""
    make_record = logging.getLogRecordFactory()
    if getattr(make_record, "adds_request_id", False):
        return

    def record_with_request_id(*args, **kwargs):
        record = make_record(*args, **kwargs)
        record.request_id = current_request_id() or "-"
        record.caller = current_caller() or "-"
        return record

    record_with_request_id.adds_request_id = True
    logging.setLogRecordFactory(record_with_request_id)


# what every line starts with while AUTH is off (mesh.auth)
# (no ": " in it: that is where a line's message starts)
AUTH_OFF_WARNING = "AUTH=off, no token is checked (for the test suite's fixtures only)"


class RequestIdFormatter(logging.Formatter):
    """A formatter for ``%(request_id)s`` that also formats records made before
    ``install_request_id_records`` ran (``-``): config.yaml's LOGGING uses it.
    ``auth``: config's ``AUTH``; off, every line starts with ``AUTH_OFF_WARNING``."""

    def __init__(self, *args, auth=True, **kwargs):
        super().__init__(*args, **kwargs)
        self.prefix = "" if as_bool(auth) else "[{}] ".format(AUTH_OFF_WARNING)

    def format(self, record):
        if not hasattr(record, "request_id"):
            record.request_id = current_request_id() or "-"
        if not hasattr(record, "caller"):
            record.caller = current_caller() or "-"
        return self.prefix + super().format(record)


class Tracing(DependencyProvider):
    """Sets the worker's request id for its log lines and logs each RPC handled."""

    def setup(self):
        install_request_id_records()

    def worker_setup(self, worker_ctx):
        set_request_id(worker_ctx.data.get(REQUEST_ID_KEY))
        set_caller(worker_ctx.data.get(CALLER_KEY))
        _deadline.set(worker_ctx.data.get(DEADLINE_KEY))
        worker_ctx.started = time.monotonic()

    def worker_result(self, worker_ctx, result=None, exc_info=None):
        if not isinstance(worker_ctx.entrypoint, Rpc):
            return
        outcome = "ok" if exc_info is None else type(exc_info[1]).__name__
        log.info("%s.%s %s in %.1f ms", self.container.service_name,
                 worker_ctx.entrypoint.method_name, outcome,
                 (time.monotonic() - worker_ctx.started) * 1000)

    def worker_teardown(self, worker_ctx):
        set_request_id(None)
        set_caller(None)
        _deadline.set(None)
