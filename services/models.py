"""Each service's tables, on its own ``DeclarativeBase`` (so its own database):
``CustomersBase`` for customers, ``InventoryBase`` for inventory,
``BillingBase`` for billing. No service reads another's tables.
"""
import datetime
from decimal import Decimal

from sqlalchemy import (
    JSON, BigInteger, CheckConstraint, DateTime, ForeignKey, Integer, String,
    TypeDecorator,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, relationship

from mesh.wire import money, utc_now


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


# customers ----------------------------------------------------------------

class CustomersBase(DeclarativeBase):
    pass


class Customer(CustomersBase):
    __tablename__ = "customers"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    name: Mapped[str] = mapped_column(String(200))
    email: Mapped[str] = mapped_column(String(320), unique=True)

    def as_dict(self):
        return {"id": self.id, "name": self.name, "email": self.email}


# inventory ----------------------------------------------------------------

class InventoryBase(DeclarativeBase):
    pass


class Product(InventoryBase):
    __tablename__ = "products"
    __table_args__ = (
        CheckConstraint("quantity >= 0", name="stock_never_negative"),
        CheckConstraint("price >= 0", name="price_never_negative"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    name: Mapped[str] = mapped_column(String(200))
    price: Mapped[Decimal] = mapped_column(MoneyType)
    quantity: Mapped[int] = mapped_column(Integer)

    def as_dict(self):
        return {"id": self.id, "name": self.name, "price": self.price,
                "quantity": self.quantity}


class StockReservation(InventoryBase):
    """Stock taken for one bill. Released reservations stay as tombstones, so a
    reservation request arriving after its release is refused."""

    __tablename__ = "stock_reservations"

    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    status: Mapped[str] = mapped_column(String(10))  # "reserved" | "released"
    items: Mapped[list] = mapped_column(JSON)  # [{"product_id", "quantity"}]
    created_at: Mapped[datetime.datetime] = mapped_column(UtcDateTime, default=utc_now)


# billing ------------------------------------------------------------------

class BillingBase(DeclarativeBase):
    pass


class Bill(BillingBase):
    __tablename__ = "bills"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    billing_date: Mapped[datetime.datetime] = mapped_column(UtcDateTime, default=utc_now)
    customer_id: Mapped[int] = mapped_column(Integer, index=True)
    reservation_id: Mapped[str] = mapped_column(String(36), unique=True, nullable=True)
    items: Mapped[list["ProductItem"]] = relationship(
        back_populates="bill", cascade="all, delete-orphan", order_by="ProductItem.id",
        lazy="selectin")

    def as_dict(self):
        return {"id": self.id, "billing_date": self.billing_date,
                "customer_id": self.customer_id,
                "items": [item.as_dict() for item in self.items]}


class ProductItem(BillingBase):
    __tablename__ = "product_items"
    __table_args__ = (CheckConstraint("quantity > 0", name="item_quantity_positive"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    bill_id: Mapped[int] = mapped_column(ForeignKey("bills.id"), index=True)
    product_id: Mapped[int] = mapped_column(Integer, index=True)
    quantity: Mapped[int] = mapped_column(Integer)
    unit_price: Mapped[Decimal] = mapped_column(MoneyType)
    bill: Mapped[Bill] = relationship(back_populates="items")

    def as_dict(self):
        return {"id": self.id, "product_id": self.product_id,
                "quantity": self.quantity, "unit_price": self.unit_price}


class IdempotencyKey(BillingBase):
    """A client's ``Idempotency-Key`` for ``POST /bills``, the request it came
    with (a SHA-256 fingerprint) and the bill it made. Stored in the bill's own
    transaction, so a key exists exactly when its bill does."""

    __tablename__ = "idempotency_keys"

    key: Mapped[str] = mapped_column(String(200), primary_key=True)
    request_hash: Mapped[str] = mapped_column(String(64))
    bill_id: Mapped[int] = mapped_column(ForeignKey("bills.id"))


class OutboxEvent(BillingBase):
    """An event to dispatch, written in the same transaction as the bill it is
    about: a bill committed is a bill whose event will be sent (at least once;
    consumers deduplicate by ``event_id``), even if billing dies right after the
    commit. Seeded bills get theirs too."""

    __tablename__ = "outbox_events"

    event_id: Mapped[str] = mapped_column(String(36), primary_key=True)
    event_type: Mapped[str] = mapped_column(String(50))
    payload: Mapped[dict] = mapped_column(JSON)
    created_at: Mapped[datetime.datetime] = mapped_column(UtcDateTime, default=utc_now, index=True)
    dispatched_at: Mapped[datetime.datetime] = mapped_column(UtcDateTime, nullable=True)
