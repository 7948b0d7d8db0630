"""customers: who bills are made out to.

    nameko run --config config.yaml services.customers
    >>> n.rpc.customers.get_customer(1)
    {'id': 1, 'name': 'Mohamed', 'email': 'med@gmail.com'}
"""
from sqlalchemy import select
from sqlalchemy.exc import IntegrityError

import mesh.service
from common.paging import get_or_raise, page_of
from common.validation import IdsIn, PageIn, validate
from contracts.errors import CustomerHasBills, CustomerNotFound, EmailTaken
from contracts.events import CUSTOMER_DELETED, CUSTOMER_UPDATED, customer_changed
from contracts.services import BILLING, CUSTOMERS
from mesh.db import MeshDatabase
from mesh.events import ChangeEvents
from mesh.proxy import MeshRpcProxy
from mesh.rpc import rpc
from services.customers_models import Customer, CustomersBase, CustomersInbox
from services.customers_schemas import CustomerIn
from services.customers_seed import seed_customers


class CustomersService(mesh.service.MeshService):
    name = CUSTOMERS

    # inbox: the writes below apply once, also when RabbitMQ delivers a call again
    db = MeshDatabase(CustomersBase, seed=seed_customers, inbox=CustomersInbox)
    billing = MeshRpcProxy(BILLING)
    changes = ChangeEvents()

    @rpc
    def list_customers(self, page=0, size=20):
        """A page of customers ordered by id.

            >>> n.rpc.customers.list_customers(page=0, size=2)
            {'items': [{'id': 1, ...}, {'id': 2, ...}],
             'page': {'number': 0, 'size': 2, 'total_items': 3, 'total_pages': 2}}
        """
        query = validate(PageIn, {"page": page, "size": size})
        with self.db.get_session() as session:
            return page_of(session, select(Customer).order_by(Customer.id),
                           query.page, query.size)

    @rpc
    def get_customer(self, customer_id):
        """One customer, or ``CustomerNotFound``.

            >>> n.rpc.customers.get_customer(1)
            {'id': 1, 'name': 'Mohamed', 'email': 'med@gmail.com'}
        """
        with self.db.get_session() as session:
            return get_or_raise(session, Customer, customer_id, CustomerNotFound).as_dict()

    @rpc
    def get_customers(self, ids):
        """Many customers in one call, in id order; unknown ids are left out.

            >>> n.rpc.customers.get_customers([2, 1, 99])
            {'items': [{'id': 1, ...}, {'id': 2, ...}]}
        """
        ids = validate(IdsIn, {"ids": ids}).ids
        with self.db.get_session() as session:
            rows = session.scalars(
                select(Customer).where(Customer.id.in_(ids)).order_by(Customer.id))
            return {"items": [row.as_dict() for row in rows]}

    @rpc(inbox=True)
    def create_customer(self, customer):
        """Create a customer; the e-mail address must be unused.

            >>> n.rpc.customers.create_customer({"name": "Ali", "email": "ali@mail.com"})
            {'id': 4, 'name': 'Ali', 'email': 'ali@mail.com'}
        """
        data = validate(CustomerIn, customer)
        with self.db.get_session() as session:
            row = Customer(**data.model_dump())
            session.add(row)
            self._flush_unique_email(session, data.email)
            return row.as_dict()

    @rpc(inbox=True)
    def update_customer(self, customer_id, customer):
        """Replace a customer's name and e-mail address; ``customer_updated``
        follows the commit.

            >>> n.rpc.customers.update_customer(4, {"name": "Ali B", "email": "ali@mail.com"})
            {'id': 4, 'name': 'Ali B', 'email': 'ali@mail.com'}
        """
        data = validate(CustomerIn, customer)
        with self.db.get_session() as session:
            row = get_or_raise(session, Customer, customer_id, CustomerNotFound)
            row.name, row.email = data.name, data.email
            self._flush_unique_email(session, data.email)
            updated = row.as_dict()
        self.changes(CUSTOMER_UPDATED, customer_changed(customer_id))
        return updated

    @rpc(inbox=True)
    def delete_customer(self, customer_id):
        """Delete a customer that no bill refers to; ``customer_deleted``
        follows the commit.

            >>> n.rpc.customers.delete_customer(4)
            {'id': 4, 'deleted': True}
        """
        with self.db.get_session() as session:
            row = get_or_raise(session, Customer, customer_id, CustomerNotFound)
            bills = self.billing.count_bills(customer_id=row.id)
            if bills:
                raise CustomerHasBills("customer {} has {} bill(s)".format(row.id, bills))
            session.delete(row)
        self.changes(CUSTOMER_DELETED, customer_changed(customer_id))
        return {"id": customer_id, "deleted": True}

    @staticmethod
    def _flush_unique_email(session, email):
        try:
            session.flush()
        except IntegrityError:
            raise EmailTaken("e-mail address {} is already taken".format(email))
