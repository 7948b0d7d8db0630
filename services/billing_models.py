"""billing's tables, on its own ``DeclarativeBase`` (so its own database)."""
import datetime
from decimal import Decimal

from sqlalchemy import CheckConstraint, ForeignKey, Integer, String
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, relationship

from common.columns import MoneyType, UtcDateTime
from contracts.events import ACTIVE, bill_cancelled_event, bill_created_event
from contracts.wire import utc_now
from mesh.inbox import InboxColumns
from mesh.outbox import OutboxColumns


class BillingBase(DeclarativeBase):
    pass


class Bill(BillingBase):
    __tablename__ = "bills"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    billing_date: Mapped[datetime.datetime] = mapped_column(UtcDateTime, default=utc_now)
    customer_id: Mapped[int] = mapped_column(Integer, index=True)
    reservation_id: Mapped[str] = mapped_column(String(36), unique=True, nullable=True)
    # "active" | "cancelled" (contracts.events); a cancelled bill is kept, with its time
    status: Mapped[str] = mapped_column(String(10), default=ACTIVE, server_default=ACTIVE)
    cancelled_at: Mapped[datetime.datetime] = mapped_column(UtcDateTime, nullable=True)
    # the event_id its bill_created and bill_cancelled left with: a rebuild of the
    # analytics gives them again with these (services.rebuilder)
    created_event_id: Mapped[str] = mapped_column(String(36), nullable=True)
    cancelled_event_id: Mapped[str] = mapped_column(String(36), nullable=True)
    # who made and who cancelled it: the subject of the gateway request's token
    # (mesh.auth), None for bills made without one (seeded, AUTH=off, plain RPC)
    created_by: Mapped[str] = mapped_column(String(255), nullable=True)
    cancelled_by: Mapped[str] = mapped_column(String(255), nullable=True)
    items: Mapped[list["ProductItem"]] = relationship(
        back_populates="bill", cascade="all, delete-orphan", order_by="ProductItem.id",
        lazy="selectin")

    def as_dict(self):
        return {"id": self.id, "billing_date": self.billing_date,
                "customer_id": self.customer_id, "status": self.status,
                "cancelled_at": self.cancelled_at, "created_by": self.created_by,
                "cancelled_by": self.cancelled_by,
                "items": [item.as_dict() for item in self.items]}


def bill_created_event_of(bill):
    """The ``bill_created`` a stored ``Bill`` left with (its id, its time)."""
    return bill_created_event(bill.as_dict(), event_id=bill.created_event_id,
                              occurred_at=bill.billing_date.isoformat(),
                              reservation_id=bill.reservation_id)


def bill_cancelled_event_of(bill):
    """The ``bill_cancelled`` a stored cancelled ``Bill`` left with."""
    return bill_cancelled_event(bill.as_dict(), bill.cancelled_at,
                                event_id=bill.cancelled_event_id,
                                reservation_id=bill.reservation_id)


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


class OutboxEvent(OutboxColumns, BillingBase):
    """billing's outbox (``mesh.outbox``): each bill's ``bill_created``, written
    in the bill's own transaction. Seeded bills get theirs too."""

    __tablename__ = "outbox_events"


class BillingInbox(InboxColumns, BillingBase):
    """billing's inbox (``mesh.inbox``): each call of an ``@rpc(inbox=True)``
    method and its answer, written in the call's own transaction."""

    __tablename__ = "inbox"
