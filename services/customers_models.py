"""customers' tables, on its own ``DeclarativeBase`` (so its own database)."""
from sqlalchemy import Integer, String
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

from mesh.inbox import InboxColumns


class CustomersBase(DeclarativeBase):
    pass


class Customer(CustomersBase):
    __tablename__ = "customers"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    name: Mapped[str] = mapped_column(String(200))
    email: Mapped[str] = mapped_column(String(320), unique=True)

    def as_dict(self):
        return {"id": self.id, "name": self.name, "email": self.email}


class CustomersInbox(InboxColumns, CustomersBase):
    """customers' inbox (``mesh.inbox``): each call of an ``@rpc(inbox=True)``
    method and its answer, written in the call's own transaction."""

    __tablename__ = "inbox"
