"""What billing's RPC methods accept (validated by the service itself)."""
import hashlib
import json
from typing import Annotated, Optional

from pydantic import Field, StrictStr

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
