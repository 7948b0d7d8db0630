"""What each RPC method accepts: pydantic models, validated by the service itself
(so ``nameko shell`` callers get the same checks as HTTP callers).

``validate(CustomerIn, data)`` returns the model or raises ``InvalidInput`` whose
message names the field: ``"email: value is not a valid email address: ..."``.
"""
import hashlib
import json
from decimal import Decimal
from typing import Annotated, List, Optional

from pydantic import (
    BaseModel, ConfigDict, EmailStr, Field, StrictInt, StrictStr,
    ValidationError, field_validator,
)

from mesh.errors import InvalidInput

MAX_PAGE_SIZE = 100

Id = Annotated[StrictInt, Field(gt=0)]
Name = Annotated[StrictStr, Field(min_length=1, max_length=200)]
# a price may come as a number or a string ("19.99"); never more than 2 decimals
Money = Annotated[Decimal, Field(ge=0, max_digits=14, decimal_places=2,
                                 allow_inf_nan=False)]


class Body(BaseModel):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)


class CustomerIn(Body):
    name: Name
    email: EmailStr


class ProductIn(Body):
    name: Name
    price: Money
    quantity: Annotated[StrictInt, Field(ge=0)]


class ItemIn(Body):
    product_id: Id
    quantity: Annotated[StrictInt, Field(gt=0)]


class ItemsIn(Body):
    items: Annotated[List[ItemIn], Field(min_length=1, max_length=100)]

    @field_validator("items")
    @classmethod
    def each_product_once(cls, items):
        seen = set()
        for item in items:
            if item.product_id in seen:
                raise ValueError("product {} is listed twice".format(item.product_id))
            seen.add(item.product_id)
        return items


class BillIn(ItemsIn):
    customer_id: Id
    idempotency_key: Optional[Annotated[StrictStr, Field(min_length=1, max_length=200)]] = None

    def fingerprint(self):
        """SHA-256 of what is billed (not of the key): the same request, whatever
        the order of its items, has the same fingerprint."""
        what = {"customer_id": self.customer_id,
                "items": sorted((item.product_id, item.quantity) for item in self.items)}
        return hashlib.sha256(json.dumps(what, sort_keys=True).encode()).hexdigest()


class PageIn(BaseModel):
    """Query parameters arrive as text: lax ints here (``"2"`` is 2)."""

    page: Annotated[int, Field(ge=0)] = 0
    size: Annotated[int, Field(ge=1, le=MAX_PAGE_SIZE)] = 20
    customer_id: Optional[Annotated[int, Field(gt=0)]] = None


class WindowsIn(BaseModel):
    """``last`` revenue windows (query text: lax int); ``events`` ends a stream."""

    last: Annotated[int, Field(ge=1, le=1000)] = 12
    events: Optional[Annotated[int, Field(ge=1)]] = None


class IdsIn(BaseModel):
    ids: Annotated[List[Id], Field(max_length=1000)]


def validate(model, data):
    """``model`` built from ``data``, or ``InvalidInput`` naming each bad field."""
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        problems = []
        for error in exc.errors():
            field = ".".join(str(part) for part in error["loc"]) or "body"
            problems.append("{}: {}".format(field, error["msg"]))
        raise InvalidInput("; ".join(problems))
