"""Every error the mesh answers with, and its HTTP status: the one error table.

Errors cross RPC hops as real exceptions: each class is registered with nameko's
``deserialize_to_instance``, so ``billing`` catches the ``CustomerNotFound`` that
``customers`` raised, and the gateway maps it to 404 without string matching.
Domain errors subclass the five families below and only set ``code``.

    >>> raise CustomerNotFound("customer 7 does not exist")
    # over HTTP: 404 {"error": "CUSTOMER_NOT_FOUND", "message": "customer 7 does not exist"}
"""
from nameko.exceptions import (
    BadRequest, MethodNotFound, RemoteError, UnknownService,
    deserialize_to_instance,
)


class MeshError(Exception):
    """Base of every error with a stable code and HTTP status."""

    status = 500
    code = "INTERNAL_ERROR"

    def __init__(self, message):
        super().__init__(message)
        self.message = message


class InvalidInput(MeshError):
    """Malformed or invalid input; the message names the field."""

    status = 400
    code = "INVALID_INPUT"


class Unauthorized(MeshError):
    status = 401
    code = "UNAUTHORIZED"


class Forbidden(MeshError):
    status = 403
    code = "FORBIDDEN"


class NotFound(MeshError):
    status = 404
    code = "NOT_FOUND"


class Conflict(MeshError):
    status = 409
    code = "CONFLICT"


class ServiceUnavailable(MeshError):
    """A service behind the caller did not answer within its deadline."""

    status = 503
    code = "SERVICE_UNAVAILABLE"


class DeadlineExceeded(ServiceUnavailable):
    """The caller's deadline passed before the work could be committed."""

    code = "DEADLINE_EXCEEDED"


def mesh_error(cls):
    """Class decorator: make ``cls`` cross RPC hops as itself."""
    return deserialize_to_instance(cls)


for _cls in (MeshError, InvalidInput, Unauthorized, Forbidden, NotFound, Conflict,
             ServiceUnavailable, DeadlineExceeded):
    mesh_error(_cls)


def error_body(exc):
    """Map any exception to ``(status, {"error": CODE, "message": text})``.

    The only place where exceptions become HTTP statuses. Anything that is not a
    ``MeshError`` is a bug (500), except the broker saying a service is absent.
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
