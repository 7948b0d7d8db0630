"""Every error the mesh answers with: its code and its HTTP status, the one table.

The families set the status; each domain error only sets its ``code``. They
cross RPC hops as themselves (``mesh.errors`` registers every class here with
nameko), so ``billing`` catches the ``CustomerNotFound`` that ``customers``
raised, and the gateway maps it to 404 without string matching.

    >>> raise CustomerNotFound("customer 7 does not exist")
    # over HTTP: 404 {"error": "CUSTOMER_NOT_FOUND", "message": "customer 7 does not exist"}
"""


class MeshError(Exception):
    """Base of every error with a stable code and HTTP status."""

    status = 500
    code = "INTERNAL_ERROR"

    def __init__(self, message):
        super().__init__(message)
        self.message = message


# families -----------------------------------------------------------------

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


class MethodNotAllowed(MeshError):
    """The route exists, the method does not: the answer carries ``Allow``."""

    status = 405
    code = "METHOD_NOT_ALLOWED"


class Conflict(MeshError):
    status = 409
    code = "CONFLICT"


class PayloadTooLarge(MeshError):
    """The body is larger than ``MAX_BODY_BYTES``."""

    status = 413
    code = "PAYLOAD_TOO_LARGE"


class UnsupportedMediaType(MeshError):
    """A body that is not ``Content-Type: application/json``."""

    status = 415
    code = "UNSUPPORTED_MEDIA_TYPE"


class TooManyRequests(MeshError):
    """The caller went over its limit (``RATE_LIMIT_RATE``, ``RATE_LIMIT_BURST``):
    answered with ``Retry-After``."""

    status = 429
    code = "RATE_LIMITED"


class ServiceUnavailable(MeshError):
    """A service behind the caller did not answer within its deadline."""

    status = 503
    code = "SERVICE_UNAVAILABLE"


class AnalyticsRebuilding(MeshError):
    """The analytics are being rebuilt from billing's record
    (``services.rebuilder``): their figures are partial until it is done."""

    status = 503
    code = "ANALYTICS_REBUILDING"


class DeadlineExceeded(ServiceUnavailable):
    """The caller's deadline passed before the work could be committed."""

    code = "DEADLINE_EXCEEDED"


# domain errors ------------------------------------------------------------

class CustomerNotFound(NotFound):
    code = "CUSTOMER_NOT_FOUND"


class ProductNotFound(NotFound):
    code = "PRODUCT_NOT_FOUND"


class BillNotFound(NotFound):
    code = "BILL_NOT_FOUND"


class EmailTaken(Conflict):
    code = "EMAIL_TAKEN"


class InsufficientStock(Conflict):
    """Names the product: ``product 2 (Printer): 11 requested, 10 in stock``."""

    code = "INSUFFICIENT_STOCK"


class ReservationReleased(Conflict):
    code = "RESERVATION_RELEASED"


class CustomerHasBills(Conflict):
    code = "CUSTOMER_HAS_BILLS"


class ProductHasBills(Conflict):
    code = "PRODUCT_HAS_BILLS"


class IdempotencyKeyReused(Conflict):
    """The same ``Idempotency-Key`` came with a different request."""

    code = "IDEMPOTENCY_KEY_REUSED"


def all_errors():
    """Every error class above, families first."""
    found, todo = [], [MeshError]
    while todo:
        cls = todo.pop(0)
        found.append(cls)
        todo.extend(cls.__subclasses__())
    return found
