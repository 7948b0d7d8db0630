"""One page of a query, in the shape every paged list answers."""
import math

from sqlalchemy import func, select


def page_of(session, statement, page, size):
    """``{"items": [row.as_dict(), ...], "page": {"number", "size", "total_items",
    "total_pages"}}`` for ``statement`` (already ordered); ``page`` counts from 0."""
    total = session.scalar(select(func.count()).select_from(statement.subquery()))
    rows = session.scalars(statement.offset(page * size).limit(size))
    return {"items": [row.as_dict() for row in rows],
            "page": {"number": page, "size": size, "total_items": total,
                     "total_pages": math.ceil(total / size)}}
