"""What the gateway validates itself: only what it does not forward (the
services validate what they are sent, 400 naming the field)."""
from typing import Annotated, Optional

from pydantic import BaseModel, Field


class StreamIn(BaseModel):
    """``GET /analytics/stream``: ``last`` windows per event (as analytics'
    ``list_revenue_windows`` takes it), ``events`` ends the stream after that
    many (query text: lax ints)."""

    last: Annotated[int, Field(ge=1, le=1000)] = 12
    events: Optional[Annotated[int, Field(ge=1)]] = None
