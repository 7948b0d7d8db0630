"""Column types every service's tables use: money as integer cents, times as
aware UTC datetimes (SQLAlchemy, no nameko)."""
import datetime
from decimal import Decimal

from sqlalchemy import BigInteger, DateTime, TypeDecorator

from contracts.wire import money


class MoneyType(TypeDecorator):
    """``Decimal`` stored as integer cents: exact on SQLite (which has no
    decimal type) and PostgreSQL alike."""

    impl = BigInteger
    cache_ok = True

    def process_bind_param(self, value, dialect):
        return None if value is None else int(money(value) * 100)

    def process_result_value(self, value, dialect):
        return None if value is None else money(Decimal(value) / 100)


class UtcDateTime(TypeDecorator):
    """Always an aware UTC ``datetime`` (SQLite gives naive ones back)."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value, dialect):
        if value is not None and value.tzinfo is not None:
            value = value.astimezone(datetime.timezone.utc)
        return value

    def process_result_value(self, value, dialect):
        if value is not None and value.tzinfo is None:
            value = value.replace(tzinfo=datetime.timezone.utc)
        return value
