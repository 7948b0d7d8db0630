"""What billing's RPC methods accept (validated by the service itself)."""
import hashlib
import json
from typing import Annotated, Literal, Optional, Tuple

from pydantic import AwareDatetime, BaseModel, Field, StrictStr

from common.validation import Id, ItemsIn
from contracts.limits import MAX_KEY_LENGTH


class BillIn(ItemsIn):
    customer_id: Id
    idempotency_key: Optional[Annotated[StrictStr, Field(min_length=1,
                                                         max_length=MAX_KEY_LENGTH)]] = None

    def fingerprint(self):
        """SHA-256 of what is billed (not of the key): the same request, whatever
        the order of its items, has the same fingerprint."""
        what = {"customer_id": self.customer_id,
                "items": sorted((item.product_id, item.quantity) for item in self.items)}
        return hashlib.sha256(json.dumps(what, sort_keys=True).encode()).hexdigest()


# a page of bill events (list_bill_events): enough for a rebuild's batches
MAX_BILL_EVENTS_PAGE = 2000


class BillEventsIn(BaseModel):
    """Where a page of bill events starts: after ``(time, 0 creation or 1
    cancellation, bill id)``, the ``next`` of the page before; up to ``until``."""

    after: Optional[Tuple[AwareDatetime, Literal[0, 1], Id]] = None
    until: Optional[AwareDatetime] = None
    size: Annotated[int, Field(ge=1, le=MAX_BILL_EVENTS_PAGE)] = 500
