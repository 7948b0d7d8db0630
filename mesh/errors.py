"""Errors between nameko and the mesh's error table (``contracts.errors``).

* Every error class of ``contracts.errors`` crosses RPC hops as itself: they are
  registered with nameko's ``deserialize_to_instance`` (its documented hook) when
  this module is imported, which every mesh entrypoint and proxy does.
* ``error_body``: any exception as an HTTP status and ``{"error", "message"}``,
  the only place where exceptions become statuses.
* A ``MeshError`` is an answer (not found, conflict, invalid input), not a
  crash: entrypoints list it as expected, and ``quiet_expected_errors`` keeps
  nameko from printing a traceback for it (one warning line instead).
"""
import logging

from nameko.exceptions import (
    BadRequest, MethodNotFound, RemoteError, UnknownService, deserialize_to_instance,
)

from contracts.errors import InvalidInput, MeshError, ServiceUnavailable, all_errors

for _cls in all_errors():
    deserialize_to_instance(_cls)


def error_body(exc):
    """Map any exception to ``(status, {"error": CODE, "message": text})``.

    Anything that is not a ``MeshError`` is a bug (500), except the broker saying
    a service is absent.
    """
    if isinstance(exc, MeshError):
        return exc.status, {"error": exc.code, "message": exc.message}
    if isinstance(exc, UnknownService):
        return 503, {"error": ServiceUnavailable.code,
                     "message": "service {} is not running".format(exc.args[0])}
    if isinstance(exc, MethodNotFound):
        return 500, {"error": "INTERNAL_ERROR",
                     "message": "unknown RPC method {}".format(exc.args[0])}
    if isinstance(exc, BadRequest):  # a call with arguments the method does not take
        return 400, {"error": InvalidInput.code, "message": str(exc)}
    if isinstance(exc, RemoteError):
        return 500, {"error": "INTERNAL_ERROR",
                     "message": "remote {}: {}".format(exc.exc_type, exc.value)}
    return 500, {"error": "INTERNAL_ERROR", "message": "{}: {}".format(
        type(exc).__name__, exc)}


# nameko's container logs an expected exception as a warning *with* its
# traceback (ServiceContainer._run_worker, listed in docs/upstream-internals.md)
EXPECTED_ERROR_PREFIX = "(expected) error handling worker"


class WithoutTraceback(logging.Filter):
    """Drops the traceback from nameko's "(expected) error handling worker"
    warnings: a 404 is one warning line, not a crash report."""

    def filter(self, record):
        if str(record.msg).startswith(EXPECTED_ERROR_PREFIX):
            record.exc_info = None
            record.exc_text = None
        return True


_quiet = WithoutTraceback()


def quiet_expected_errors():
    """Install the filter on nameko's container logger (once; entrypoints call
    it from ``setup``, when a service starts)."""
    logger = logging.getLogger("nameko.containers")
    if _quiet not in logger.filters:
        logger.addFilter(_quiet)
