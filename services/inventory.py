"""inventory: products, their prices and their stock.

Stock is taken for a bill with ``reserve_stock`` and given back with
``release_stock``. A reservation is all or nothing and atomic in the database
(a conditional ``UPDATE ... WHERE quantity >= n`` per product, in one
transaction), so stock never goes below zero, however many instances run.

A reservation is ``held`` until billing's ``bill_created`` (from its outbox, at
least once) confirms it (``confirmed``: the stock is sold), or it goes back
(``released``). Held reservations older than ``RESERVATION_TTL`` are asked about
(``expire_reservations``): billing says which have a bill (those are confirmed,
never released, however late their event) and the others are given back; while
billing does not answer, nothing is released. A cancelled bill's stock comes
back with its ``bill_cancelled`` (``returned``, once, whichever state the
reservation was in; a seeded bill, made without one, gets a ``returned``
record under ``bill-<id>``, so its stock too comes back once). The TTL is at least twice
``RPC_TIMEOUT``: a bill committed after it would have missed its deadline, which
``mesh.db`` refuses.

    nameko run --config config.yaml services.inventory
    >>> n.rpc.inventory.reserve_stock([{"product_id": 2, "quantity": 1}])
    {'reservation_id': '9f0c...', 'items': [{'product': {...}, 'quantity': 1,
     'unit_price': Decimal('1299.00')}]}

Events (after the commit): ``product_updated``, ``product_deleted`` at once;
``stock_changed`` at most every ``STOCK_EVENT_INTERVAL_S``, naming every product
whose stock changed meanwhile (one event for many bills, not one each).
"""
import datetime
import logging
import time
import uuid

from nameko.dependency_providers import Config
from sqlalchemy import bindparam, insert, select, update
from sqlalchemy.exc import IntegrityError

import mesh.service
from common.paging import get_or_raise, page_of
from common.validation import IdsIn, ItemsIn, PageIn, validate
from common.config import seconds_setting
from contracts.errors import (
    Conflict, InsufficientStock, ProductHasBills, ProductNotFound, ReservationReleased,
    ServiceUnavailable,
)
from contracts.events import (
    BILL_CANCELLED, BILL_CREATED, PRODUCT_DELETED, PRODUCT_UPDATED, STOCK_CHANGED,
    products_changed,
)
from contracts.services import BILLING, INVENTORY
from contracts.wire import utc_now
from mesh.db import MeshDatabase
from mesh.events import ChangeEvents, event_handler
from mesh.pending import Pending
from mesh.proxy import MeshRpcProxy
from mesh.rpc import rpc
from mesh.timer import timer
from services.inventory_models import InventoryBase, InventoryInbox, Product, StockReservation
from services.inventory_schemas import ProductIn
from services.inventory_seed import seed_products

# released: given back without a bill; returned: given back by its bill's cancellation
HELD, CONFIRMED, RELEASED, RETURNED = "held", "confirmed", "released", "returned"
DEFAULT_RESERVATION_TTL_S = 60.0
RESERVATION_SWEEP_S = 1.0  # how often each instance looks for expired reservations
SWEEP_BATCH = 100
# while billing does not answer, the sweep says so at most this often (not every run)
SWEEP_WARNING_EVERY_S = 30.0
_last_sweep_warning = [float("-inf")]  # monotonic time, one per process

log = logging.getLogger(__name__)

# Every bill changes stock: one event per bill cost inventory, the broker and
# each gateway more than the reservation itself. Readers only need "read again".
STOCK_EVENT_INTERVAL_S = 0.05
# bill_created's confirmations, gathered (confirm_reservations): nothing waits
# on a confirmation (the TTL is a minute), and each run costs a commit, so fewer
# runs under load leave inventory's CPU to the reservations (docs/benchmarks.md)
CONFIRM_INTERVAL_S = 0.25

PRODUCT_COLUMNS = (Product.id, Product.name, Product.price, Product.quantity)
RESERVE = insert(StockReservation)  # the reservation row, first (see reserve_stock)
# a product's stock taken, unless short: the row as it is after, or none
TAKE_STOCK = (update(Product)
              .where(Product.id == bindparam("taken_id"),
                     Product.quantity >= bindparam("taken"))
              .values(quantity=Product.quantity - bindparam("taken"))
              .returning(*PRODUCT_COLUMNS))


def reservation_answer(reservation_id, lines, products):
    """``reserve_stock``'s answer: each line with its product (by id) and the
    product's price as the unit price."""
    return {"reservation_id": reservation_id, "items": [
        {"product": products[line["product_id"]], "quantity": line["quantity"],
         "unit_price": products[line["product_id"]]["price"]}
        for line in lines]}


class InventoryService(mesh.service.MeshService):
    name = INVENTORY

    # inbox: the writes below apply once, also when RabbitMQ delivers a call again
    db = MeshDatabase(InventoryBase, seed=seed_products, inbox=InventoryInbox)
    billing = MeshRpcProxy(BILLING)
    changes = ChangeEvents()
    config = Config()
    stock_changes = Pending()  # products whose stock changed since the last stock_changed
    # reservations bill_created named since the last confirm_reservations: one
    # statement for many bills (one commit per bill was inventory's second
    # write transaction per bill); lost with the instance, the expiry sweep
    # confirms them then (billing says they have a bill)
    confirmations = Pending()

    @rpc
    def list_products(self, page=0, size=20):
        """A page of products ordered by id.

            >>> n.rpc.inventory.list_products(size=1)
            {'items': [{'id': 1, 'name': 'Computer', 'price': Decimal('3200.00'),
             'quantity': 11}], 'page': {'number': 0, 'size': 1, ...}}
        """
        query = validate(PageIn, {"page": page, "size": size})
        with self.db.get_session() as session:
            return page_of(session, select(Product).order_by(Product.id),
                           query.page, query.size)

    @rpc
    def get_product(self, product_id):
        """One product, or ``ProductNotFound``.

            >>> n.rpc.inventory.get_product(2)
            {'id': 2, 'name': 'Printer', 'price': Decimal('1299.00'), 'quantity': 10}
        """
        with self.db.get_session() as session:
            return get_or_raise(session, Product, product_id, ProductNotFound).as_dict()

    @rpc
    def get_products(self, ids):
        """Many products in one call, in id order; unknown ids are left out.

            >>> n.rpc.inventory.get_products([3, 1])
            {'items': [{'id': 1, ...}, {'id': 3, ...}]}
        """
        ids = validate(IdsIn, {"ids": ids}).ids
        with self.db.get_session() as session:
            rows = session.scalars(
                select(Product).where(Product.id.in_(ids)).order_by(Product.id))
            return {"items": [row.as_dict() for row in rows]}

    @rpc(inbox=True)
    def create_product(self, product):
        """Create a product (price >= 0 with at most 2 decimals, stock >= 0).

            >>> n.rpc.inventory.create_product({"name": "Mouse", "price": "19.99", "quantity": 5})
            {'id': 4, 'name': 'Mouse', 'price': Decimal('19.99'), 'quantity': 5}
        """
        data = validate(ProductIn, product)
        with self.db.get_session() as session:
            row = Product(**data.model_dump())
            session.add(row)
            session.flush()
            return row.as_dict()

    @rpc(inbox=True)
    def update_product(self, product_id, product):
        """Replace a product's name, price and stock; ``product_updated`` follows
        the commit. Bills keep the price they were made with.

            >>> n.rpc.inventory.update_product(4, {"name": "Mouse", "price": "17.50", "quantity": 5})
            {'id': 4, 'name': 'Mouse', 'price': Decimal('17.50'), 'quantity': 5}
        """
        data = validate(ProductIn, product)
        with self.db.get_session() as session:
            row = get_or_raise(session, Product, product_id, ProductNotFound)
            for field, value in data.model_dump().items():
                setattr(row, field, value)
            session.flush()
            updated = row.as_dict()
        self.changes(PRODUCT_UPDATED, products_changed([product_id]))
        return updated

    @rpc(inbox=True)
    def delete_product(self, product_id):
        """Delete a product that no bill refers to; ``product_deleted`` follows
        the commit.

            >>> n.rpc.inventory.delete_product(4)
            {'id': 4, 'deleted': True}
        """
        with self.db.get_session() as session:
            row = get_or_raise(session, Product, product_id, ProductNotFound)
            bills = self.billing.count_bills(product_id=row.id)
            if bills:
                raise ProductHasBills("product {} is on {} bill(s)".format(row.id, bills))
            session.delete(row)
        self.changes(PRODUCT_DELETED, products_changed([product_id]))
        return {"id": product_id, "deleted": True}

    @rpc(inbox=True)
    def reserve_stock(self, items, reservation_id=None):
        """Take stock for every item, or for none: ``InsufficientStock`` names
        the first product that is short; ``stock_changed`` follows (within 50 ms).
        Answers each product at its current price, read in the same
        transaction. Repeating a ``reservation_id`` answers the first
        reservation again; one already released is refused.

            >>> n.rpc.inventory.reserve_stock([{"product_id": 1, "quantity": 2}], "r-1")
            {'reservation_id': 'r-1', 'items': [{'product': {'id': 1, ...},
             'quantity': 2, 'unit_price': Decimal('3200.00')}]}
        """
        items = validate(ItemsIn, {"items": items}).items
        reservation_id = reservation_id or str(uuid.uuid4())
        lines = [item.model_dump() for item in items]
        with self.db.get_session() as session:
            # Core statements built once, on the session's connection: the ORM's
            # unit of work and bulk-update path, and building each statement
            # again, cost more than the writes; RETURNING saves reading them back
            connection = session.connection()
            # the reservation row first: a repeated id fails here, before any
            # stock is touched (and waits for a concurrent twin to commit)
            try:
                connection.execute(RESERVE, {"id": reservation_id, "status": HELD,
                                             "items": lines})
            except IntegrityError:
                session.rollback()
                return self._previous_reservation(session, reservation_id)
            taken = {}
            # fixed lock order: concurrent reservations cannot deadlock
            for item in sorted(items, key=lambda item: item.product_id):
                row = connection.execute(TAKE_STOCK, {
                    "taken_id": item.product_id, "taken": item.quantity}).one_or_none()
                if row is None:
                    self._refuse(session, item)
                taken[row.id] = row._asdict()
            reservation = reservation_answer(reservation_id, lines, taken)
        self.stock_changes.update(line["product_id"] for line in lines)
        return reservation

    @rpc(inbox=True)
    def release_stock(self, reservation_id):
        """Give a held reservation's stock back, once (then ``stock_changed``).
        Releasing an unknown id leaves a tombstone, so a late ``reserve_stock``
        with that id is refused; a confirmed one (its bill committed) keeps its
        stock.

            >>> n.rpc.inventory.release_stock("r-1")
            {'reservation_id': 'r-1', 'status': 'released', 'restocked': True}
        """
        with self.db.get_session() as session:
            lines = self._give_back(session, reservation_id)
            restocked, status = lines is not None, RELEASED
            if not restocked:
                lines = []
                row = session.get(StockReservation, reservation_id)
                if row is None:
                    session.add(StockReservation(id=reservation_id, status=RELEASED, items=[]))
                else:
                    status = row.status
        self.stock_changes.update(line["product_id"] for line in lines)
        return {"reservation_id": reservation_id, "status": status, "restocked": restocked}

    @event_handler(BILLING, BILL_CREATED)
    def confirm_reservation(self, event):
        """A bill committed: its reservation's stock is sold (``confirmed``, never
        given back), within ``CONFIRM_INTERVAL_S`` (``confirm_reservations``).
        Idempotent: events come at least once.

            billing.bill_created {"event_id": "...", "reservation_id": "r-1", "bill": {...}}
        """
        reservation_id = event.get("reservation_id")
        if reservation_id:
            self.confirmations.add(reservation_id)

    @timer(interval=CONFIRM_INTERVAL_S)
    def confirm_reservations(self):
        """Confirm every reservation ``confirm_reservation`` gathered since the
        last run, in one statement; on failure they wait for the next run.

            inventory: reservations r-1, r-2 confirmed
        """
        if not self.confirmations:
            return
        reservation_ids = list(self.confirmations)
        self.confirmations.clear()
        try:
            self._confirm(reservation_ids)
        except Exception:
            self.confirmations.update(reservation_ids)
            raise

    # requeue_on_error: nothing else gives a cancelled bill's stock back (a
    # confirmation lost has the expiry sweep behind it, a return has none)
    @event_handler(BILLING, BILL_CANCELLED, requeue_on_error=True)
    def return_cancelled_stock(self, event):
        """A bill was cancelled: its stock comes back, once (``returned``), also
        when its reservation was still held or the event comes again. An error
        gives the event back to RabbitMQ, to be tried again.

            billing.bill_cancelled {"event_id": "...", "reservation_id": "r-1",
                                    "bill": {"id": 4, "items": [...], ...}}
        """
        bill = event["bill"]
        # a bill made without a reservation (the seeded ones) is recorded under
        # its own id, so that a repeated event finds it returned
        reservation_id = event.get("reservation_id") or "bill-{}".format(bill["id"])
        with self.db.get_session() as session:
            returned = session.execute(
                update(StockReservation)
                .where(StockReservation.id == reservation_id,
                       StockReservation.status.in_((HELD, CONFIRMED)))
                .values(status=RETURNED)).rowcount
            if returned:
                lines = session.get(StockReservation, reservation_id).items
            elif session.get(StockReservation, reservation_id) is not None:
                return  # returned already (or released: its stock is back)
            else:
                lines = [{"product_id": item["product_id"], "quantity": item["quantity"]}
                         for item in bill["items"]]
                session.add(StockReservation(id=reservation_id, status=RETURNED, items=lines))
                try:
                    session.flush()
                except IntegrityError:  # the event's twin, at the same moment
                    session.rollback()
                    return
            for line in lines:
                session.execute(update(Product).where(Product.id == line["product_id"])
                                .values(quantity=Product.quantity + line["quantity"]))
        self.stock_changes.update(line["product_id"] for line in lines)
        log.info("bill %s cancelled: stock of reservation %s returned", bill["id"],
                 reservation_id)

    @timer(interval=RESERVATION_SWEEP_S)
    def expire_reservations(self):
        """Held reservations older than ``RESERVATION_TTL``: confirm those billing
        has a bill for, give the others back; while billing does not answer,
        nothing (tried again at the next run).

            inventory: reservation r-7 held 61 s without a bill: stock given back
        """
        ttl = seconds_setting(self.config, "RESERVATION_TTL", DEFAULT_RESERVATION_TTL_S,
                              at_least=2 * float(self.config.get("RPC_TIMEOUT", 5)))
        cutoff = utc_now() - datetime.timedelta(seconds=ttl)
        with self.db.get_session() as session:
            expired = session.scalars(
                select(StockReservation.id)
                .where(StockReservation.status == HELD, StockReservation.created_at < cutoff)
                .order_by(StockReservation.created_at).limit(SWEEP_BATCH)).all()
        if not expired:
            return
        try:
            billed = self.billing.get_bills_for_reservations(expired)
        except ServiceUnavailable as exc:
            now = time.monotonic()
            if now - _last_sweep_warning[0] >= SWEEP_WARNING_EVERY_S:
                _last_sweep_warning[0] = now
                log.warning("%d reservation(s) held past %.0f s, kept until billing answers "
                            "which have a bill (%s)", len(expired), ttl, exc)
            return
        self._confirm([reservation_id for reservation_id in expired if reservation_id in billed])
        given_back = []
        with self.db.get_session() as session:
            for reservation_id in expired:
                if reservation_id not in billed:
                    lines = self._give_back(session, reservation_id)
                    if lines is not None:
                        given_back.append(reservation_id)
                        self.stock_changes.update(line["product_id"] for line in lines)
        for reservation_id in given_back:
            log.info("reservation %s held %.0f s without a bill: stock given back",
                     reservation_id, ttl)

    def _confirm(self, reservation_ids):
        with self.db.get_session() as session:
            session.execute(update(StockReservation)
                            .where(StockReservation.id.in_(reservation_ids),
                                   StockReservation.status == HELD)
                            .values(status=CONFIRMED))

    @staticmethod
    def _give_back(session, reservation_id):
        """Release a held reservation in ``session``: its lines, restocked; None
        when it is not held (unknown, confirmed or released already)."""
        released = session.execute(
            update(StockReservation)
            .where(StockReservation.id == reservation_id, StockReservation.status == HELD)
            .values(status=RELEASED))
        if released.rowcount != 1:
            return None
        lines = session.get(StockReservation, reservation_id).items
        for line in lines:
            session.execute(update(Product).where(Product.id == line["product_id"])
                            .values(quantity=Product.quantity + line["quantity"]))
        return lines

    @timer(interval=STOCK_EVENT_INTERVAL_S)
    def publish_stock_changes(self):
        """One ``stock_changed`` for every product whose stock changed since the
        last one (reservations, releases), if any.

            inventory.stock_changed {"product_ids": [1, 2]}
        """
        if self.stock_changes:
            product_ids = list(self.stock_changes)
            self.stock_changes.clear()
            self.changes(STOCK_CHANGED, products_changed(product_ids))

    @staticmethod
    def _previous_reservation(session, reservation_id):
        """The answer to a repeated ``reserve_stock``: the first reservation
        again, with its products as they are now; refused once released."""
        previous = session.get(StockReservation, reservation_id)
        if previous is None:  # rolled back meanwhile: let the caller try again
            raise Conflict("reservation {} is being made".format(reservation_id))
        if previous.status == RELEASED:
            raise ReservationReleased(
                "reservation {} was already released".format(reservation_id))
        ids = [line["product_id"] for line in previous.items]
        products = {row.id: row.as_dict() for row in session.scalars(
            select(Product).where(Product.id.in_(ids)))}
        return reservation_answer(reservation_id, previous.items, products)

    @staticmethod
    def _refuse(session, item):
        product = session.get(Product, item.product_id)
        if product is None:
            raise ProductNotFound("product {} does not exist".format(item.product_id))
        raise InsufficientStock("product {} ({}): {} requested, {} in stock".format(
            product.id, product.name, item.quantity, product.quantity))

