"""Domain errors of every service. Each sets only its code: its HTTP status
comes from its family in ``mesh.errors`` (the one error table)."""
from mesh.errors import Conflict, NotFound, mesh_error


@mesh_error
class CustomerNotFound(NotFound):
    code = "CUSTOMER_NOT_FOUND"


@mesh_error
class ProductNotFound(NotFound):
    code = "PRODUCT_NOT_FOUND"


@mesh_error
class BillNotFound(NotFound):
    code = "BILL_NOT_FOUND"


@mesh_error
class EmailTaken(Conflict):
    code = "EMAIL_TAKEN"


@mesh_error
class InsufficientStock(Conflict):
    """Names the product: ``product 2 (Printer): 11 requested, 10 in stock``."""

    code = "INSUFFICIENT_STOCK"


@mesh_error
class ReservationReleased(Conflict):
    code = "RESERVATION_RELEASED"


@mesh_error
class CustomerHasBills(Conflict):
    code = "CUSTOMER_HAS_BILLS"


@mesh_error
class ProductHasBills(Conflict):
    code = "PRODUCT_HAS_BILLS"


@mesh_error
class IdempotencyKeyReused(Conflict):
    """The same ``Idempotency-Key`` came with a different request."""

    code = "IDEMPOTENCY_KEY_REUSED"
