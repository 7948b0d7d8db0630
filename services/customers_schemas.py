"""What customers' RPC methods accept (validated by the service itself, so
``nameko shell`` callers get the same checks as HTTP callers)."""
from common.validation import Body, Email, Name


class CustomerIn(Body):
    name: Name
    email: Email  # the edge's rule too: what the HTTP contract's document says
