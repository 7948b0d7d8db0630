"""What analytics' RPC methods accept."""
from typing import Annotated

from pydantic import BaseModel, Field

from contracts.limits import MAX_WINDOWS


class WindowsIn(BaseModel):
    """``last`` revenue windows (query text: lax int)."""

    last: Annotated[int, Field(ge=1, le=MAX_WINDOWS)] = 12
