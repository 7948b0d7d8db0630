"""What inventory's RPC methods accept (validated by the service itself).
Reservations take ``common.validation.ItemsIn``, the lines of a bill."""
from typing import Annotated

from pydantic import Field, StrictInt

from common.validation import Body, Money, Name


class ProductIn(Body):
    name: Name
    price: Money
    quantity: Annotated[StrictInt, Field(ge=0)]
