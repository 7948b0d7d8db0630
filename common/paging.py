"""Queries every service makes the same way: one row by id, one page of rows."""
import math

from sqlalchemy import func, select

from contracts.limits import MAX_ID


def page_of(session, statement, page, size):
    """``{"items": [row.as_dict(), ...], "page": {"number", "size", "total_items",
    "total_pages"}}`` for ``statement`` (already ordered); ``page`` counts from 0."""
    total = session.scalar(select(func.count()).select_from(statement.subquery()))
    rows = session.scalars(statement.offset(page * size).limit(size))
    return {"items": [row.as_dict() for row in rows],
            "page": {"number": page, "size": size, "total_items": total,
                     "total_pages": math.ceil(total / size)}}


def get_or_raise(session, model, row_id, not_found):
    """The ``model`` row with id ``row_id``, or ``not_found`` raised naming it:
    ``get_or_raise(session, Customer, 7, CustomerNotFound)`` ->
    ``CustomerNotFound("customer 7 does not exist")``."""
    # an id beyond any INTEGER column cannot exist (and PostgreSQL refuses it)
    fits = isinstance(row_id, int) and not isinstance(row_id, bool) and 0 < row_id <= MAX_ID
    row = session.get(model, row_id) if fits else None
    if row is None:
        raise not_found("{} {} does not exist".format(model.__name__.lower(), row_id))
    return row
