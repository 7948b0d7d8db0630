"""Input validation with pydantic: the field types every service shares, and
``validate``, which turns pydantic's errors into ``InvalidInput`` (400).

``validate(CustomerIn, data)`` returns the model or raises ``InvalidInput``
whose message names the field: ``"email: value is not a valid email address: ..."``.
Each service's own models are in ``services/<service>_schemas.py``.
"""
from decimal import Decimal
from typing import Annotated, List, Optional

from pydantic import (
    BaseModel, BeforeValidator, ConfigDict, Field, StrictInt, StrictStr, ValidationError,
    field_validator,
)

from contracts.errors import InvalidInput
from contracts.limits import (
    MAX_ID, MAX_IDS_PER_CALL, MAX_ITEMS_PER_BILL, MAX_NAME_LENGTH, MAX_PAGE, MAX_PAGE_SIZE,
    MAX_QUANTITY,
)



def whole_number(value):
    """JSON's ``3.0`` is an integer too (JSON Schema says so); it arrives as
    ``Decimal("3.0")`` (money never passes through a float). Strings and
    booleans stay refused."""
    if isinstance(value, Decimal) and value.is_finite() and value == value.to_integral_value():
        return int(value)
    return value


def whole(*constraints):
    """A strict int within ``constraints`` (``Field(...)``), ``3.0`` taken as 3.
    The converter goes last, so the JSON schema keeps the bounds."""
    return Annotated[StrictInt, *constraints, BeforeValidator(whole_number)]


Id = whole(Field(gt=0, le=MAX_ID))
# no NUL: PostgreSQL cannot store it in text
Name = Annotated[StrictStr, Field(min_length=1, max_length=MAX_NAME_LENGTH,
                                  pattern=r"^[^\x00]*$")]
Quantity = whole(Field(ge=0, le=MAX_QUANTITY))
# a price may come as a number or a string ("19.99"); never more than 2 decimals
Money = Annotated[Decimal, Field(ge=0, max_digits=14, decimal_places=2,
                                 allow_inf_nan=False)]


class Body(BaseModel):
    """A JSON object from a caller: unknown fields are refused."""

    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)


class ItemIn(Body):
    """One line of a bill or a reservation: ``{"product_id": 2, "quantity": 3}``."""

    product_id: Id
    quantity: whole(Field(gt=0, le=MAX_QUANTITY))


class ItemsIn(Body):
    """The lines of a bill or a reservation: 1 to 100, each product once."""

    items: Annotated[List[ItemIn], Field(min_length=1, max_length=MAX_ITEMS_PER_BILL)]

    @field_validator("items")
    @classmethod
    def each_product_once(cls, items):
        seen = set()
        for item in items:
            if item.product_id in seen:
                raise ValueError("product {} is listed twice".format(item.product_id))
            seen.add(item.product_id)
        return items


class PageIn(BaseModel):
    """Query parameters arrive as text: lax ints here (``"2"`` is 2)."""

    page: Annotated[int, Field(ge=0, le=MAX_PAGE)] = 0
    size: Annotated[int, Field(ge=1, le=MAX_PAGE_SIZE)] = 20
    customer_id: Optional[Annotated[int, Field(gt=0, le=MAX_ID)]] = None


class IdsIn(BaseModel):
    ids: Annotated[List[Id], Field(max_length=MAX_IDS_PER_CALL)]


class ReservationIdsIn(BaseModel):
    """Stock reservation ids (uuid4 text, or any id a caller gave ``reserve_stock``)."""

    reservation_ids: Annotated[List[Annotated[StrictStr, Field(min_length=1, max_length=36)]],
                               Field(max_length=MAX_IDS_PER_CALL)]


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
