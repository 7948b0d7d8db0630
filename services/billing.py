"""billing: bills and their product items.

Its clients of ``customers`` and ``inventory`` play the part of Feign clients:
declared once, called like local objects, each call with a deadline. The full
bill and bill creation are coroutines (``mesh.coroutines``): they await those
clients, and run their database work in greenthreads. The
customers it bills are cached (``BILLING_CACHE``): a bill for a known customer
makes no call to ``customers``; ``customer_updated`` / ``customer_deleted``
evict them.

    nameko run --config config.yaml services.billing
    >>> n.rpc.billing.get_full_bill(1)
    {'id': 1, 'customer': {...}, 'items': [{'product': {...}, 'quantity': 1,
     'unit_price': Decimal('3200.00'), 'line_total': Decimal('3200.00')}, ...],
     'total': Decimal('9899.00'), ...}

Events: ``bill_created`` and ``bill_cancelled`` (``contracts.events``). Each is
written to billing's outbox (``mesh.outbox``) in the transaction of its change
and dispatched right after the commit; a timer marks the dispatched ones, all
in one statement, and re-sends whatever was not dispatched (a crash between
commit and dispatch, the seeded bills), so every bill's events leave at least
once. inventory confirms a bill's stock reservation with ``bill_created`` and
gives its stock back with ``bill_cancelled``.

A bill is ``active`` until cancelled (``cancel_bill``); a cancelled bill stays,
with ``cancelled_at``, and the analytics stop counting it.
"""
import asyncio
import logging
import uuid
from decimal import Decimal

import eventlet

from mesh.timer import timer
from sqlalchemy import BigInteger, func, insert, select, tuple_, type_coerce, update
from sqlalchemy.exc import IntegrityError

import mesh.service
from common.paging import get_or_raise, page_of
from common.validation import PageIn, ReservationIdsIn, validate
from contracts.wire import money, utc_now
from contracts.cache_tags import customer_tag
from contracts.errors import BillNotFound, IdempotencyKeyReused, ServiceUnavailable
from contracts.events import (
    ACTIVE, CANCELLED, CUSTOMER_DELETED, CUSTOMER_UPDATED, bill_created_event,
)
from contracts.services import BILLING, CUSTOMERS, INVENTORY
from mesh.cache import ReadCache
from mesh.coroutines import in_greenthread, run_to_completion
from mesh.db import MeshDatabase
from mesh.events import evicts_on
from mesh.outbox import Outbox
from mesh.proxy import MeshRpcProxy
from mesh.rpc import rpc
from mesh.tracing import current_caller
from services.billing_models import (
    Bill, BillingBase, BillingInbox, IdempotencyKey, OutboxEvent, ProductItem,
    bill_cancelled_event_of, bill_created_event_of,
)
from services.billing_schemas import BillEventsIn, BillIn
from services.billing_seed import seed_bills

log = logging.getLogger(__name__)

OUTBOX_RELAY_S = 1.0  # how often undispatched events are looked for
OUTBOX_GRACE_S = 2.0  # younger ones are left to the request that made them

# a bill's rows (BillingService._store), each statement built once
INSERT_BILL = insert(Bill).returning(Bill.id)
INSERT_ITEMS = insert(ProductItem).returning(ProductItem.id, sort_by_parameter_order=True)
INSERT_KEY = insert(IdempotencyKey)


class BillingService(mesh.service.MeshService):
    name = BILLING

    # inbox: create_bill applies once, also when RabbitMQ delivers a call again
    db = MeshDatabase(BillingBase, seed=seed_bills, inbox=BillingInbox)
    customers = MeshRpcProxy(CUSTOMERS)
    inventory = MeshRpcProxy(INVENTORY)
    # gives stock back after a failure, even when the caller's deadline is spent
    inventory_compensation = MeshRpcProxy(INVENTORY, inherit_deadline=False)
    # bill_created and bill_cancelled, to whoever declares a handler of them
    # (contracts.services): the Kafka bridge, inventory
    outbox = Outbox(OutboxEvent, grace_s=OUTBOX_GRACE_S)
    # a call to customers per bill costs the mesh CPU in three processes (its
    # share, the broker's, billing's); answers only, never "not found"
    customer_cache = ReadCache("BILLING_CACHE")

    @rpc
    def get_bill(self, bill_id):
        """A bill with its items (product ids, quantities, unit prices).

            >>> n.rpc.billing.get_bill(1)
            {'id': 1, 'billing_date': datetime(...), 'customer_id': 1,
             'status': 'active', 'cancelled_at': None,
             'items': [{'id': 1, 'product_id': 1, 'quantity': 1,
                        'unit_price': Decimal('3200.00')}, ...]}
        """
        return self._bill(bill_id)

    @rpc
    def list_bills(self, customer_id=None, page=0, size=20):
        """A page of bills ordered by id, of one customer if ``customer_id``.

            >>> n.rpc.billing.list_bills(customer_id=2)
            {'items': [{'id': 2, 'customer_id': 2, ...}], 'page': {...}}
        """
        query = validate(PageIn, {"customer_id": customer_id, "page": page, "size": size})
        statement = select(Bill).order_by(Bill.id)
        if query.customer_id is not None:
            statement = statement.where(Bill.customer_id == query.customer_id)
        with self.db.get_session() as session:
            return page_of(session, statement, query.page, query.size)

    @rpc
    async def get_full_bill(self, bill_id):
        """The bill with its customer and products expanded, line totals and
        total: one call to each service, both in flight at once.

            >>> n.rpc.billing.get_full_bill(1)["total"]
            Decimal('9899.00')
        """
        return await self._full_bill(bill_id)

    @rpc(inbox=True)
    async def create_bill(self, customer_id=None, items=None, idempotency_key=None):
        """Bill a customer: checks the customer, takes the stock from inventory,
        stores the bill with the products' current prices, gives the stock back
        if storing fails, then dispatches ``bill_created``. Answers the full bill.
        With an ``idempotency_key`` already used for the same request, answers
        that bill and creates nothing (with another request: 409).

            >>> n.rpc.billing.create_bill(1, [{"product_id": 2, "quantity": 3}])
            {'id': 4, 'customer': {...}, 'items': [{'product': {...}, 'quantity': 3,
             'unit_price': Decimal('1299.00'), 'line_total': Decimal('3897.00')}],
             'total': Decimal('3897.00'), ...}
        """
        given = {"customer_id": customer_id, "items": items,
                 "idempotency_key": idempotency_key}
        request = validate(BillIn, {k: v for k, v in given.items() if v is not None})
        if request.idempotency_key:
            earlier = await in_greenthread(self._bill_for_key, request)
            if earlier is not None:
                return await self._full_bill(earlier)
        customer = await self._customer(request.customer_id)
        reservation_id = str(uuid.uuid4())
        try:
            reservation = await self.inventory.reserve_stock(
                [item.model_dump() for item in request.items], reservation_id)
        except asyncio.CancelledError:  # the deadline: the stock may be taken all the same
            eventlet.spawn_n(self._release, reservation_id)
            raise
        except ServiceUnavailable:
            await in_greenthread(self._release, reservation_id)  # it may have been made
            raise

        def release_unless_stored(stored, error):
            # the deadline cancelled this call while the bill was being stored
            if error is not None:
                self._release(reservation_id)

        products = {line["product"]["id"]: line["product"] for line in reservation["items"]}
        try:
            bill, event, answer = await run_to_completion(
                self._store, request, reservation, customer, products, current_caller(),
                settle=release_unless_stored)
        except IntegrityError:
            await in_greenthread(self._release, reservation_id)
            earlier = (await in_greenthread(self._bill_for_key, request)
                       if request.idempotency_key else None)
            if earlier is None:
                raise
            return await self._full_bill(earlier)  # a concurrent attempt with this key won
        except Exception:
            await in_greenthread(self._release, reservation_id)
            raise
        await in_greenthread(self._dispatch, bill, event)
        log.info("bill %s created for customer %s, reservation %s",
                 bill["id"], request.customer_id, reservation_id)
        return answer

    @rpc(inbox=True)
    def cancel_bill(self, bill_id):
        """Cancel a bill: it is kept, ``"status": "cancelled"`` with
        ``cancelled_at``, and ``bill_cancelled`` leaves through the outbox
        (inventory gives the stock back with it, the aggregator subtracts the
        bill). Cancelling a cancelled bill answers it as it is and sends
        nothing; an unknown bill is ``BillNotFound``. Answers the bill as
        ``get_bill`` does.

            >>> n.rpc.billing.cancel_bill(4)
            {'id': 4, 'status': 'cancelled', 'cancelled_at': datetime(...),
             'customer_id': 1, 'items': [...], ...}
        """
        with self.db.get_session() as session:
            # conditional: of concurrent cancellations, one changes the row and
            # writes the event, the others find it cancelled
            changed = session.execute(
                update(Bill).where(Bill.id == bill_id, Bill.status == ACTIVE)
                .values(status=CANCELLED, cancelled_at=utc_now(), cancelled_by=current_caller(),
                        cancelled_event_id=str(uuid.uuid4()))).rowcount
            row = get_or_raise(session, Bill, bill_id, BillNotFound)
            bill = row.as_dict()
            event = None
            if changed:
                event = self.outbox.write(session.connection(), bill_cancelled_event_of(row))
            # committed here, with the answer (mesh.inbox): the event leaves after it
            session.answer_call(bill)
        if event is not None:
            self._dispatch(bill, event)
            log.info("bill %s of customer %s cancelled", bill["id"], bill["customer_id"])
        return bill

    @rpc
    def get_bills_for_reservations(self, reservation_ids):
        """Which of these stock reservations a bill was made with: ``{reservation
        id: bill id}``, the others left out. inventory asks before it gives back
        a reservation no confirmation reached in ``RESERVATION_TTL``.

            >>> n.rpc.billing.get_bills_for_reservations(["r-1", "r-2"])
            {'r-1': 4}
        """
        ids = validate(ReservationIdsIn, {"reservation_ids": reservation_ids}).reservation_ids
        with self.db.get_session() as session:
            rows = session.execute(select(Bill.reservation_id, Bill.id)
                                   .where(Bill.reservation_id.in_(ids)))
            return {reservation_id: bill_id for reservation_id, bill_id in rows}

    @rpc
    def count_bills(self, customer_id=None, product_id=None):
        """How many bills name this customer, or hold this product.

            >>> n.rpc.billing.count_bills(customer_id=1)
            1
        """
        statement = select(func.count(func.distinct(Bill.id)))
        if customer_id is not None:
            statement = statement.where(Bill.customer_id == customer_id)
        if product_id is not None:
            statement = statement.join(ProductItem).where(
                ProductItem.product_id == product_id)
        with self.db.get_session() as session:
            return session.scalar(statement)

    @evicts_on(CUSTOMERS, CUSTOMER_UPDATED)
    @evicts_on(CUSTOMERS, CUSTOMER_DELETED)
    def evict_customer(self, event):
        """A customer changed or is gone: the next bill asks ``customers`` again.

            customers.customer_deleted {"customer_id": 4}
        """
        self.customer_cache.evict(customer_tag(event["customer_id"]))

    async def _full_bill(self, bill_id):
        with_items = await in_greenthread(self._bill, bill_id)
        customer, products = await asyncio.gather(
            self.customers.get_customer(with_items["customer_id"]),
            self.inventory.get_products([item["product_id"] for item in with_items["items"]]))
        by_id = {product["id"]: product for product in products["items"]}
        return full_bill(with_items, customer, by_id)

    def _bill(self, bill_id):
        with self.db.get_session() as session:
            return get_or_raise(session, Bill, bill_id, BillNotFound).as_dict()

    async def _customer(self, customer_id):
        """The customer, from the cache or from ``customers`` (which raises
        ``CustomerNotFound``, not cached)."""
        tag = customer_tag(customer_id)

        async def load():
            return await self.customers.get_customer(customer_id), [tag]

        return await self.customer_cache.read_async(tag, load)

    def _dispatch(self, bill, event):
        try:
            self.outbox.dispatch(event)
        except Exception:  # noqa: BLE001  the bill is committed: answer it
            log.warning("bill %s: its event stays in the outbox for the relay", bill["id"],
                        exc_info=True)

    def _bill_for_key(self, request):
        """The bill made earlier with this request's key, if any."""
        with self.db.get_session() as session:
            used = session.get(IdempotencyKey, request.idempotency_key)
        if used is None:
            return None
        if used.request_hash != request.fingerprint():
            raise IdempotencyKeyReused(
                "Idempotency-Key {!r} was used for a different bill".format(used.key))
        return used.bill_id

    def _store(self, request, reservation, customer, products, created_by):
        """Insert the bill, its items, its idempotency key, its event and the
        call's answer (the full bill, ``mesh.inbox``) in one transaction; the
        bill as ``get_bill`` answers it, the event, and the full bill.

        Core inserts with RETURNING on the session's connection: the ORM's unit
        of work for these four rows cost billing more than the rest of the bill.
        The statements are built once and take the values as parameters.
        """
        with self.db.get_session() as session:
            connection = session.connection()
            bill = {"customer_id": request.customer_id, "billing_date": utc_now(),
                    "created_by": created_by}
            event_id = str(uuid.uuid4())
            bill["id"] = connection.execute(
                INSERT_BILL, dict(bill, reservation_id=reservation["reservation_id"],
                                  created_event_id=event_id)
            ).scalar_one()
            bill.update(status=ACTIVE, cancelled_at=None, cancelled_by=None)
            items = [{"bill_id": bill["id"], "product_id": line["product"]["id"],
                      "quantity": line["quantity"], "unit_price": line["unit_price"]}
                     for line in reservation["items"]]
            item_ids = connection.execute(INSERT_ITEMS, items).scalars().all()
            bill["items"] = [{"id": item_id, "product_id": item["product_id"],
                              "quantity": item["quantity"], "unit_price": item["unit_price"]}
                             for item_id, item in zip(item_ids, items)]
            if request.idempotency_key:
                connection.execute(INSERT_KEY, {
                    "key": request.idempotency_key, "bill_id": bill["id"],
                    "request_hash": request.fingerprint()})
            # the bill's own time and id: a rebuild gives the very same event again
            event = self.outbox.write(connection, bill_created_event(
                bill, event_id=event_id, occurred_at=bill["billing_date"].isoformat(),
                reservation_id=reservation["reservation_id"]))
            answer = full_bill(bill, customer, products)
            # The one explicit line of the inbox: this block must commit here, not
            # after create_bill returns, so that a failed commit (a late one, the
            # call's twin that won) still gives the stock back (create_bill's
            # except clauses, run_to_completion's settle) and bill_created leaves
            # only after it. So the answer is handed to this transaction.
            session.answer_call(answer)
            return bill, event, answer  # the commit happens on leaving the block

    @rpc
    def get_ledger(self):
        """What billing holds, as the analytics must show it: the active bills,
        their revenue, and the bill events billing has given in all (one
        ``bill_created`` per bill, one ``bill_cancelled`` per cancelled bill).

            >>> n.rpc.billing.get_ledger()
            {'bills': 3, 'revenue': Decimal('59394.00'), 'events': 3}
        """
        cents = type_coerce(ProductItem.unit_price, BigInteger)  # exact, summed in SQL
        with self.db.get_session() as session:
            bills, cancelled = session.execute(select(
                func.count(), func.count().filter(Bill.status == CANCELLED))).one()
            revenue = session.scalar(
                select(func.coalesce(func.sum(ProductItem.quantity * cents), 0))
                .join(Bill).where(Bill.status == ACTIVE))
        return {"bills": bills - cancelled, "revenue": money(Decimal(revenue) / 100),
                "events": bills + cancelled}

    @rpc
    def list_bill_events(self, after=None, until=None, size=500):
        """Every bill's events as they first left (same ``event_id``, same
        time), oldest first: ``bill_created`` at the bill's ``billing_date``,
        ``bill_cancelled`` at its ``cancelled_at``. A page of ``size`` after the
        position ``after`` (the ``next`` of the page before; None: from the
        start), up to ``until`` (ISO 8601; None: all); ``next`` is None after the
        last page. A rebuild of the analytics reads billing's record with it.

            >>> n.rpc.billing.list_bill_events(size=2)
            {'items': [{'event_id': '...', 'type': 'bill_created', ...}, ...],
             'next': ['2026-11-24T10:00:00.123456+00:00', 0, 2]}
        """
        query = validate(BillEventsIn, {"after": after, "until": until, "size": size})
        created = (Bill.billing_date, Bill.id)
        cancelled = (Bill.cancelled_at, Bill.id)
        creations = select(Bill).order_by(*created).limit(query.size)
        cancellations = (select(Bill).where(Bill.status == CANCELLED)
                         .order_by(*cancelled).limit(query.size))
        if query.after is not None:
            at, rank, bill_id = query.after
            if rank == 0:  # a creation: its later twins, and cancellations from then on
                creations = creations.where(tuple_(*created) > tuple_(at, bill_id))
                cancellations = cancellations.where(Bill.cancelled_at >= at)
            else:
                creations = creations.where(Bill.billing_date > at)
                cancellations = cancellations.where(tuple_(*cancelled) > tuple_(at, bill_id))
        if query.until is not None:
            creations = creations.where(Bill.billing_date <= query.until)
            cancellations = cancellations.where(Bill.cancelled_at <= query.until)
        with self.db.get_session() as session:
            page = sorted([(bill.billing_date, 0, bill.id, bill)
                           for bill in session.scalars(creations)]
                          + [(bill.cancelled_at, 1, bill.id, bill)
                             for bill in session.scalars(cancellations)],
                          key=lambda entry: entry[:3])[:query.size]
            items = [bill_created_event_of(bill) if rank == 0 else bill_cancelled_event_of(bill)
                     for _, rank, _, bill in page]
        last = page[-1] if len(page) == query.size else None
        return {"items": items,
                "next": None if last is None else [last[0].isoformat(), last[1], last[2]]}

    @rpc
    def get_outbox_backlog(self):
        """Events the outbox still holds undispatched: 0 once every bill's
        ``bill_created`` has left (``/health`` says billing is catching up until then).

            >>> n.rpc.billing.get_outbox_backlog()
            0
        """
        return self.outbox.backlog(self.db)

    @timer(interval=OUTBOX_RELAY_S, eager=True)
    def relay_outbox(self):
        """Mark the events dispatched since the last run, then dispatch those the
        outbox still holds (``mesh.outbox.OutboxClient.relay``)."""
        self.outbox.relay(self.db)

    def _release(self, reservation_id):
        try:
            self.inventory_compensation.release_stock(reservation_id)
        except Exception:
            log.exception("could not release reservation %s: inventory's expiry sweep "
                          "gives its stock back after RESERVATION_TTL", reservation_id)


def full_bill(bill, customer, products):
    """Expand a bill with its customer and products (by id); add line totals
    and the total."""
    items = []
    for item in bill["items"]:
        line_total = item["unit_price"] * item["quantity"]
        items.append({"id": item["id"], "product": products.get(item["product_id"]),
                      "quantity": item["quantity"], "unit_price": item["unit_price"],
                      "line_total": line_total})
    return {"id": bill["id"], "billing_date": bill["billing_date"],
            "status": bill["status"], "cancelled_at": bill["cancelled_at"],
            "created_by": bill["created_by"], "cancelled_by": bill["cancelled_by"],
            "customer": customer, "items": items,
            "total": sum((item["line_total"] for item in items), money(0))}
