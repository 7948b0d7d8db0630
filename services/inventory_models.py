"""inventory's tables, on its own ``DeclarativeBase`` (so its own database)."""
import datetime
from decimal import Decimal

from sqlalchemy import JSON, CheckConstraint, Index, Integer, String
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

from common.columns import MoneyType, UtcDateTime
from contracts.wire import utc_now
from mesh.inbox import InboxColumns


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
    """Stock taken for one bill: ``held`` until billing confirms its bill
    (``confirmed``) or it goes back (``released``); the stock of a cancelled
    bill comes back once (``returned``). Released reservations stay as
    tombstones, so a reservation request arriving after its release is refused."""

    __tablename__ = "stock_reservations"
    # the expiry sweep: held ones, oldest first
    __table_args__ = (Index("ix_stock_reservations_status_created_at", "status", "created_at"),)

    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    status: Mapped[str] = mapped_column(String(10))  # held, confirmed, released, returned
    items: Mapped[list] = mapped_column(JSON)  # [{"product_id", "quantity"}]
    created_at: Mapped[datetime.datetime] = mapped_column(UtcDateTime, default=utc_now)


class InventoryInbox(InboxColumns, InventoryBase):
    """inventory's inbox (``mesh.inbox``): each call of an ``@rpc(inbox=True)``
    method and its answer, written in the call's own transaction."""

    __tablename__ = "inbox"
