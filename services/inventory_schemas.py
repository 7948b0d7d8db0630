"""What inventory's RPC methods accept (validated by the service itself).
Reservations take ``common.validation.ItemsIn``, the lines of a bill."""
from common.validation import Body, Money, Name, Quantity


class ProductIn(Body):
    name: Name
    price: Money
    quantity: Quantity
