"""The gateway's HTTP models: what each route accepts (``mesh.http`` validates
query and body against them before the route runs, 400 naming the field) and
what it answers. ``GET /openapi.json`` is generated from them (``mesh.openapi``).
The operations routes' models (health, registry, admin RPC) are the mesh's:
``mesh.operations_schemas``.

Their fields are the shared types of ``common.validation``, the ones the
services check their RPC arguments with, so the bounds are written once.
Unknown query parameters are ignored; unknown body fields are refused.
"""
import datetime
from typing import Annotated, List, Literal, Optional

from decimal import Decimal

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, model_validator

from common.validation import Body, Email, Id, ItemIn, Name, Quantity
from contracts.errors import InsufficientStock
from contracts.limits import (
    MAX_ID, MAX_ITEMS_PER_BILL, MAX_PAGE, MAX_PAGE_SIZE, MAX_QUANTITY, MAX_WINDOWS,
)

# --- requests -----------------------------------------------------------------


class Query(BaseModel):
    """Query parameters arrive as text: lax ints (``"2"`` is 2); others ignored."""

    model_config = ConfigDict(extra="ignore")


class PageQuery(Query):
    page: Annotated[int, Field(ge=0, le=MAX_PAGE)] = 0
    size: Annotated[int, Field(ge=1, le=MAX_PAGE_SIZE)] = 20


class BillsQuery(PageQuery):
    customer_id: Optional[Annotated[int, Field(ge=1, le=MAX_ID)]] = None


class WindowsQuery(Query):
    last: Annotated[int, Field(ge=1, le=MAX_WINDOWS)] = 12


class StreamQuery(WindowsQuery):
    """``events`` ends the stream after that many events."""

    events: Optional[Annotated[int, Field(ge=1, le=MAX_WINDOWS)]] = None


# Money over HTTP is text, never a JSON number (a float on most clients): at
# most 12 digits before the point and 2 after. It reaches the services as Decimal.
MoneyIn = Annotated[str, Field(pattern=r"^[0-9]{1,12}(\.[0-9]{1,2})?$", examples=["19.99"]),
                    AfterValidator(Decimal)]


class CustomerBody(Body):
    name: Name
    email: Email  # the pattern in the document is the check (special-use domains refused)


class ProductBody(Body):
    name: Name
    price: MoneyIn
    quantity: Quantity


class BillBody(Body):
    """A bill to make. A product listed more than once is billed on one line
    where it is first listed, its quantities added up; more than 2147483647
    units of one product in all is 409 INSUFFICIENT_STOCK."""

    # Merged here, not refused: JSON Schema cannot say "each product once"
    # (uniqueItems compares whole items), and what the document allows is
    # taken. billing, over RPC, takes each product once (common.validation.ItemsIn).

    items: Annotated[List[ItemIn], Field(
        min_length=1, max_length=MAX_ITEMS_PER_BILL,
        description="1 to {} lines. A product listed more than once is billed on one "
                    "line, its quantities added up.".format(MAX_ITEMS_PER_BILL))]
    customer_id: Id

    @model_validator(mode="after")
    def one_line_per_product(self):
        """Merged once every field is valid (a bad field is a 400 first). A
        product's quantities may add up to more than any stock can hold
        (``MAX_QUANTITY``): that is the route's 409 ``INSUFFICIENT_STOCK``, not
        a 400, for each line was valid."""
        lines = {}
        for item in self.items:
            line = lines.setdefault(item.product_id, {"product_id": item.product_id,
                                                      "quantity": 0})
            line["quantity"] += item.quantity
        if len(lines) == len(self.items):
            return self
        for line in lines.values():
            if line["quantity"] > MAX_QUANTITY:
                raise InsufficientStock(
                    "product {}: {} units asked in all, more than any stock holds "
                    "(at most {})".format(line["product_id"], line["quantity"], MAX_QUANTITY))
        self.items = [ItemIn.model_validate(line) for line in lines.values()]
        return self


# --- answers ------------------------------------------------------------------

MoneyText = Annotated[str, Field(pattern=r"^-?[0-9]+\.[0-9]{2}$", examples=["3200.00"])]


class PageInfo(BaseModel):
    number: int
    size: int
    total_items: int
    total_pages: int


class Customer(BaseModel):
    id: int
    name: str
    email: str


class CustomerPage(BaseModel):
    items: List[Customer]
    page: PageInfo


class Product(BaseModel):
    id: int
    name: str
    price: MoneyText
    quantity: int


class ProductPage(BaseModel):
    items: List[Product]
    page: PageInfo


class BillItem(BaseModel):
    id: int
    product_id: int
    quantity: int
    unit_price: MoneyText


BillStatus = Literal["active", "cancelled"]


class Bill(BaseModel):
    id: int
    billing_date: datetime.datetime
    status: BillStatus
    cancelled_at: Optional[datetime.datetime]  # None while active
    created_by: Optional[str]  # the subject of the token that made it (None: made without one)
    cancelled_by: Optional[str]  # ... and of the one that cancelled it
    customer_id: int
    items: List[BillItem]


class BillPage(BaseModel):
    items: List[Bill]
    page: PageInfo


class FullBillItem(BaseModel):
    id: int
    product: Optional[Product]  # None once the product was deleted
    quantity: int
    unit_price: MoneyText
    line_total: MoneyText


class FullBill(BaseModel):
    id: int
    billing_date: datetime.datetime
    status: BillStatus
    cancelled_at: Optional[datetime.datetime]  # None while active
    created_by: Optional[str]  # as in Bill
    cancelled_by: Optional[str]
    customer: Customer
    items: List[FullBillItem]
    total: MoneyText


class CustomerStats(BaseModel):
    customer_id: int
    revenue: MoneyText
    bills: int


class CustomerStatsList(BaseModel):
    items: List[CustomerStats]


class ProductStats(BaseModel):
    product_id: int
    units: int
    revenue: MoneyText


class ProductStatsList(BaseModel):
    items: List[ProductStats]


class RevenueWindow(BaseModel):
    start: datetime.datetime
    end: datetime.datetime
    revenue: MoneyText


class RevenueWindows(BaseModel):
    items: List[RevenueWindow]
