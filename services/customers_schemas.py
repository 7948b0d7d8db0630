"""What customers' RPC methods accept (validated by the service itself, so
``nameko shell`` callers get the same checks as HTTP callers)."""
from pydantic import EmailStr

from common.validation import Body, Name


class CustomerIn(Body):
    name: Name
    email: EmailStr
