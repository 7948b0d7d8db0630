"""Input validation with pydantic: the field types every service shares, and
``validate``, which turns pydantic's errors into ``InvalidInput`` (400).

``validate(CustomerIn, data)`` returns the model or raises ``InvalidInput``
whose message names the field: ``"email: value is not a valid email address: ..."``.
``Email`` is an address as the OpenAPI document describes it: its pattern is
the check (special-use domains such as ``.test`` refused).
Each service's own models are in ``services/<service>_schemas.py``.
"""
import re
from decimal import Decimal
from typing import Annotated, List, Optional

import email_validator
from pydantic import (
    AfterValidator, BaseModel, BeforeValidator, ConfigDict, Field, StrictInt, StrictStr,
    StringConstraints, ValidationError, WithJsonSchema, field_validator,
)
from pydantic_core import PydanticCustomError

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

# --- e-mail addresses ---------------------------------------------------------
# An address no mail can reach is a mistake on an invoice: the domains of
# RFC 6761/6762/7686 and .arpa are refused, as email-validator refuses them.
SPECIAL_USE_DOMAINS = ("arpa", "invalid", "local", "localhost", "onion", "test")
MAX_EMAIL_LENGTH = 254  # RFC 5321's path, less its angle brackets


def any_case(word):
    """``"test"`` -> ``"[Tt][Ee][Ss][Tt]"``: a JSON Schema pattern has no flags."""
    return "".join("[{}{}]".format(letter.upper(), letter) for letter in word)


# The addresses taken, as one pattern that means the same in Python and in
# ECMA-262 (JSON Schema's regexes; no lookbehind, no flags): a dot-atom local
# part (RFC 5322's atext) of at most 64 characters (RFC 5321), then a domain
# of two labels or more, each 1 to 63 letters, digits and inner hyphens, none
# with "--" as its 3rd and 4th characters (IDNA's A-labels, "xn--"), the last
# ending with a letter and not a special-use name. ASCII only. email-validator
# takes every address it matches, and a JSON Schema validator's "format:
# email" too (tests/unit/test_contract_truths.py), so the pattern is the check.
_ATOM = r"[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]+"
_NO_HYPHENS_3_4 = r"(?![A-Za-z0-9-]{2}--)"
_LABEL = _NO_HYPHENS_3_4 + r"[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?"
_TOP_LABEL = (r"(?!(?:" + "|".join(any_case(name) for name in SPECIAL_USE_DOMAINS) + r")$)"
              + _NO_HYPHENS_3_4 + r"(?:[A-Za-z0-9][A-Za-z0-9-]{0,61})?[A-Za-z]")
EMAIL_PATTERN = (r"^(?![^@]{65})" + _ATOM + r"(?:\." + _ATOM + r")*"
                 + r"@(?:" + _LABEL + r"\.)+" + _TOP_LABEL + r"$")
EMAIL_RE = re.compile(EMAIL_PATTERN)


def email_address(value):
    """``value`` as email-validator normalizes it (the domain in lower case),
    if it matches ``EMAIL_PATTERN``; else the reason, as pydantic's ``EmailStr``
    words it: ``value is not a valid email address: The part after the @-sign
    is a special-use or reserved name that cannot be used with email.``"""
    try:
        address = email_validator.validate_email(value, check_deliverability=False)
    except email_validator.EmailNotValidError as exc:
        reason = str(exc)
    else:
        if EMAIL_RE.fullmatch(value):
            return address.normalized
        reason = ("it must be ASCII, at most 64 characters before the @-sign, and no "
                  "label of its domain may have '--' as its 3rd and 4th characters "
                  "(IDNA's 'xn--')")
    raise PydanticCustomError("value_error", "value is not a valid email address: {reason}",
                              {"reason": reason})


# What the OpenAPI document says of an address is what is checked: the
# pattern and the length. Not trimmed (a trimmed address would be one the
# pattern refuses, taken all the same).
Email = Annotated[
    StrictStr, StringConstraints(strip_whitespace=False, max_length=MAX_EMAIL_LENGTH),
    AfterValidator(email_address),
    WithJsonSchema({
        "type": "string", "format": "email", "maxLength": MAX_EMAIL_LENGTH,
        "pattern": EMAIL_PATTERN, "examples": ["ali@mail.com"],
        "description": "An ASCII e-mail address, at most {} characters, with no spaces "
                       "around it. Addresses at the special-use domains no mail reaches "
                       "({}) are refused (400 INVALID_INPUT).".format(
                           MAX_EMAIL_LENGTH,
                           ", ".join("." + name for name in SPECIAL_USE_DOMAINS))})]

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
