"""The inbox: exactly-once effects for RPC methods that write.

RabbitMQ delivers a request again when the instance that took it died before
acknowledging it, also when that instance had already committed the request's
effect. A method that opts in (``@rpc(inbox=True)``, ``mesh.rpc``) records the
call's identity and its answer in the same transaction as its effect, and a
call that arrives again is answered from that record without running again.

    class CustomersInbox(InboxColumns, CustomersBase):      # services/*_models.py
        __tablename__ = "inbox"

    class CustomersService:
        db = MeshDatabase(CustomersBase, inbox=CustomersInbox)

        @rpc(inbox=True)
        def create_customer(self, customer):
            with self.db.get_session() as session:         # nothing else to write
                ...
                return row.as_dict()

How (all in the framework; a method writes no inbox code):

* The call's identity is the request's AMQP ``correlation_id``: the caller
  (nameko's proxy, ``mesh.proxy``, ``mesh.aio``) makes a new uuid4 for every
  call, and a redelivery is the same message, so it keeps it.
* One transaction per call: every ``self.db.get_session()`` of the worker is
  the same session, and leaving its block flushes instead of committing. When
  the method returns, the framework (``finish_call``, from ``mesh.rpc``) adds
  the inbox row with the answer, serialized as the reply is (kombu's JSON:
  ``Decimal`` and ``datetime`` come back as themselves), and commits effect
  and record together, then sends the reply and acknowledges the message.
* Work a method does after its block (change events, ``mesh.pending`` ids) waits
  for that commit (``after_commit``), and is dropped when it fails.
* A method whose own code must see its commit happen (billing's ``_store``:
  the stock goes back when storing fails, the event leaves after the commit)
  hands its answer in its block with ``session.answer_call(answer)``: that
  block's exit commits effect and record at once, as it did before.
* An error commits nothing, so it records nothing: running the call again
  applies nothing twice (a redelivered call that fails, or whose twin is still
  running elsewhere, is answered the record if one is there by then).

The record also stands behind the clients' ``Idempotency-Key`` of
``POST /bills``: the key is written in the same transaction as the bill and its
inbox row, so neither a retried request nor a redelivered one makes a second.

Everything of the inbox is here; the rest of the mesh calls it:

* ``mesh.rpc``: ``call_data`` (the call's identity, in the worker's context
  data), ``replay`` (a redelivery answered from its record), ``finish_call``
  (the commit with the answer, before the reply), ``inbox_database``;
* ``mesh.db``: ``CallSession`` (the base of its sessions), ``open_call``
  (``self.db`` of an inbox call);
* ``mesh.events``, ``mesh.pending``: ``after_commit``, ``after_commit_set``
  (work that waits for the call's commit).

A call's state (its ``Call``: its session, its answer, the work waiting for
its commit) lives on its worker's context data, which nameko makes for that
one delivery: nothing here is shared between workers or between containers.
"""
import datetime
import functools
import logging
import sys

import kombu.serialization
from nameko_sqlalchemy.database import Session as NamekoSession
from sqlalchemy import String, Text, event, insert, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Mapped, mapped_column

from common.columns import UtcDateTime
from contracts.wire import utc_now

log = logging.getLogger(__name__)

# session.info key of a call's session: its Call
CALL_KEY = "mesh_inbox_call"
# the INSERT of each inbox model, built once (see Call.before_commit); a
# statement, the same for every container, never state of a call
_insert_of = functools.lru_cache(maxsize=None)(insert)

_NO_ANSWER = object()


class InboxColumns:
    """The columns of a service's inbox table (a declarative mixin):
    the call's id, its method, its answer as the reply carried it, when."""

    call_id: Mapped[str] = mapped_column(String(200), primary_key=True)
    method: Mapped[str] = mapped_column(String(200))
    content_type: Mapped[str] = mapped_column(String(100))
    answer: Mapped[str] = mapped_column(Text)
    # UTC; a retention job prunes by it
    created_at: Mapped[datetime.datetime] = mapped_column(UtcDateTime, default=utc_now, index=True)


# --- a call's identity ----------------------------------------------------------

class CallData(dict):
    """The worker's context data, with the call's identity beside its items
    and, once its database opened it, its ``Call``: nameko keeps the very dict
    the entrypoint unpacked as ``worker_ctx.data``, and every header it sends
    on is built from a plain copy of it, so neither ever travels to the calls
    and events the worker makes.

        >>> data = CallData({"request_id": "r-1"}, identity={"id": "3f2c...", ...})
        >>> data.identity["id"], data.copy()
        ('3f2c...', {'request_id': 'r-1'})
    """

    def __init__(self, items, identity=None):
        super().__init__(items)
        self.identity = identity
        self.call = None


def call_identity(message):
    """What ``mesh.rpc`` hands the worker about a request: its id, method,
    content type, and whether RabbitMQ delivers it again. None without a
    ``correlation_id`` (nothing to tell a second delivery by).

        >>> call_identity(message)
        {'id': '3f2c...', 'method': 'customers.create_customer',
         'content_type': 'application/json', 'redelivered': False}
    """
    call_id = message.properties.get("correlation_id")
    if not call_id:
        return None
    return {"id": call_id, "method": message.delivery_info["routing_key"],
            "content_type": message.properties.get("content_type") or "application/json",
            "redelivered": bool(message.delivery_info.get("redelivered"))}


def call_data(data, message):
    """The context data an inbox method's entrypoint unpacked from ``message``
    (``data``), as its worker gets it: with the call's identity (``CallData``)."""
    return CallData(data, identity=call_identity(message))


def _call_of(worker_ctx):
    """The worker's ``Call``, if it is an inbox call its database opened."""
    return getattr(worker_ctx.data, "call", None)


# --- the record -------------------------------------------------------------------

def encode_answer(answer, content_type):
    """``answer`` as the reply's serializer writes it (text).

        >>> encode_answer({"total": Decimal("9.90")}, "application/json")
        '{"total": {"__type__": "decimal", "__value__": "9.90"}}'
    """
    serializer = kombu.serialization.registry.type_to_name[content_type]
    _, _, body = kombu.serialization.dumps(answer, serializer)
    return body.decode("utf-8") if isinstance(body, bytes) else body


def decode_answer(text, content_type):
    """The answer ``encode_answer`` wrote, as the caller would read it.

        >>> decode_answer('{"total": {"__type__": "decimal", "__value__": "9.90"}}',
        ...               "application/json")
        {'total': Decimal('9.90')}
    """
    return kombu.serialization.loads(text, content_type, "utf-8")


def recorded_answer(session, model, call_id):
    """``(True, answer)`` if the call ``call_id`` is recorded in ``model``,
    else ``(False, None)``.

        >>> recorded_answer(session, CustomersInbox, "3f2c...")
        (True, {'id': 4, 'name': 'Ali', 'email': 'ali@mail.com'})
    """
    row = session.execute(select(model.content_type, model.answer)
                          .where(model.call_id == call_id)).one_or_none()
    if row is None:
        return False, None
    return True, decode_answer(row.answer, row.content_type)


def inbox_database(container):
    """The service's ``MeshDatabase`` that keeps an inbox (for ``@rpc(inbox=True)``)."""
    found = [d for d in container.dependencies if getattr(d, "inbox", None) is not None]
    if len(found) != 1:
        raise RuntimeError("{}: @rpc(inbox=True) needs one MeshDatabase(..., inbox=Model); "
                           "found {}".format(container.service_name, len(found)))
    return found[0]


def replay(database, message):
    """``(True, answer)`` when ``message`` is a call delivered again whose
    first run recorded its answer in ``database`` (a ``MeshDatabase`` with an
    inbox), else ``(False, None)``.

    Only redeliveries are looked up: RabbitMQ sets ``redelivered`` on every
    delivery of a message after its first (requeued when its consumer's
    channel closed unacknowledged), and RPC requests are transient, so none
    outlives a broker restart with the flag lost. A request published twice
    (a client's retry) arrives as two first deliveries: the second's commit
    meets the first's row (the primary key) and rolls back, and it answers
    the first's record (``Call._failed``).
    """
    identity = call_identity(message)
    if identity is None or not identity["redelivered"]:
        return False, None
    session = database.Session()
    try:
        found, answer = recorded_answer(session, database.inbox, identity["id"])
    finally:
        session.close()
    if found:
        log.info("answering %s again from its inbox record (a redelivery)", identity["method"])
    return found, answer


# --- one call -----------------------------------------------------------------------

class Call:
    """One call of an inbox method in a worker: its one session (its one
    transaction), the answer to record, the work waiting for the commit.
    ``make_session()``: a session of the service's database (``MeshSession``)."""

    def __init__(self, model, identity, make_session):
        self.model = model
        self.id = identity["id"]
        self.method = identity["method"]
        self.content_type = identity["content_type"]
        self.redelivered = identity["redelivered"]
        self._make_session = make_session
        self._session = None
        self.answer = _NO_ANSWER   # handed, to be written at the commit
        self.writing = False       # the row is in the transaction being committed
        self.recorded = False      # committed
        self.waiting = []          # (fn, args) to run after the commit

    # --- the session -------------------------------------------------------

    def session(self):
        if self._session is None:
            self._session = self._make_session()
            self._session.info[CALL_KEY] = self
        return self._session

    def close(self):
        if self._session is not None:
            self._session.close()

    @property
    def answer_handed(self):
        return self.answer is not _NO_ANSWER

    def hand(self, answer):
        self.answer = answer

    # --- what the session's events call (CallSession) ----------------------

    def before_commit(self, session):
        if self.answer_handed and not self.recorded:
            # serialized before the commit: an answer the reply could not carry
            # fails the call instead of being recorded
            text = encode_answer(self.answer, self.content_type)
            # on the connection, the values as parameters: the ORM's execute and
            # .values() per call were a large share of inventory's CPU per reservation
            session.connection().execute(_insert_of(self.model), {
                "call_id": self.id, "method": self.method,
                "content_type": self.content_type, "answer": text, "created_at": utc_now()})
            self.writing = True

    def after_commit(self):
        if not self.writing:
            return
        self.writing, self.recorded = False, True
        waiting, self.waiting = self.waiting, []
        for fn, args in waiting:
            try:
                fn(*args)
            except Exception:  # noqa: BLE001  committed: the answer stands
                log.exception("%s: work after the commit failed", self.method)

    def after_rollback(self):
        self.writing = False
        if not self.recorded:
            self.answer = _NO_ANSWER
            self.waiting = []

    # --- the end of the call ------------------------------------------------

    def pending(self):
        """True while the call's transaction holds work not committed yet."""
        return (self._session is not None and not self.recorded
                and self._session.in_transaction())

    def finish(self, result, exc_info):
        """Commit the call with its answer (unless the method did); the
        ``(result, exc_info)`` to reply."""
        if exc_info is not None:
            return self._failed(result, exc_info)
        if self.recorded:
            return result, None
        session = self.session()
        self.hand(result)
        try:
            session.commit()
        except Exception:  # noqa: BLE001  answered as the call's error
            exc_info = sys.exc_info()
            _rollback(session)
            return self._failed(None, exc_info)
        return result, None

    def _failed(self, result, exc_info):
        # Nothing of this call committed (or it did and recorded its answer).
        # A twin of the call (a redelivery while this one still ran, a
        # publisher's retry) may have committed: then its answer is the answer.
        if self.recorded:
            log.warning("%s failed after its commit (%s): answering what it recorded",
                        self.method, exc_info[1])
            return self.answer, None
        if self.redelivered or isinstance(exc_info[1], IntegrityError):
            found, answer = self._look_up()
            if found:
                log.info("%s: answering the record of its first run", self.method)
                return answer, None
        return result, exc_info

    def _look_up(self):
        session = self._make_session()  # a read beside the call, not of it
        try:
            return recorded_answer(session, self.model, self.id)
        except Exception:  # noqa: BLE001  the call's own error is answered
            log.warning("%s: could not read the inbox", self.method, exc_info=True)
            return False, None
        finally:
            session.close()


def _rollback(session):
    try:
        session.rollback()
    except Exception:  # noqa: BLE001  the connection is gone: closing discards it
        session.close()


class CallDatabase:
    """What ``self.db`` is in an inbox call: every ``get_session()`` is the
    call's one session (see the module docstring)."""

    def __init__(self, call):
        self.call = call

    def get_session(self, close_on_exit=False):
        return self.call.session()

    @property
    def session(self):
        return self.call.session()

    def close(self):
        self.call.close()


class CallSession(NamekoSession):
    """nameko-sqlalchemy's session (commit on leaving its block, roll back on
    an error), which in an inbox call is the call's one session: leaving its
    block flushes, and ``finish_call`` commits it with the call's answer once
    the method returned, unless the block handed the answer (``answer_call``),
    which commits at the block's exit as usual. ``mesh.db``'s sessions are
    ``CallSession``s."""

    def __exit__(self, exc_type, exc_val, exc_tb):
        call = self.info.get(CALL_KEY)
        if call is None or exc_type is not None or call.answer_handed or call.recorded:
            return super().__exit__(exc_type, exc_val, exc_tb)
        try:
            self.flush()  # what the commit would raise (a unique key) is raised here
        except Exception:
            self.rollback()
            raise
        return None

    def answer_call(self, answer):
        """Record ``answer`` as the answer of this worker's inbox call, in this
        transaction: the block's exit commits effect and record together. A
        session of a method that did not opt in records nothing.

            with self.db.get_session() as session:
                ...
                session.answer_call(full)     # committed with the bill
        """
        call = self.info.get(CALL_KEY)
        if call is not None:
            call.hand(answer)


@event.listens_for(CallSession, "before_commit")
def _record_answer(session):
    call = session.info.get(CALL_KEY)
    if call is not None:
        call.before_commit(session)


@event.listens_for(CallSession, "after_commit")
def _answer_recorded(session):
    call = session.info.get(CALL_KEY)
    if call is not None:
        call.after_commit()


@event.listens_for(CallSession, "after_soft_rollback")
def _answer_not_recorded(session, _previous_transaction):
    call = session.info.get(CALL_KEY)
    if call is not None:
        call.after_rollback()


# --- a worker's call ------------------------------------------------------------------

def open_call(worker_ctx, model, make_session):
    """``self.db`` of this worker if its entrypoint handed an identity
    (``CallData``) and its database keeps an inbox (``model``): a
    ``CallDatabase`` on the worker's ``Call``, kept in its context data for
    ``finish_call`` and ``after_commit``. Else None: the worker is no call.
    ``make_session()``: a session of that database."""
    data = worker_ctx.data
    identity = getattr(data, "identity", None)
    if identity is None or model is None:
        return None
    data.call = Call(model, identity, make_session)
    return CallDatabase(data.call)


def finish_call(worker_ctx, result, exc_info):
    """From the entrypoint, before the reply: commit the call with its answer;
    the ``(result, exc_info)`` to reply. A worker that is no call: unchanged."""
    call = _call_of(worker_ctx)
    if call is None:
        return result, exc_info
    worker_ctx.data.call = None  # finished once; work added later runs at once
    return call.finish(result, exc_info)


def after_commit(worker_ctx, fn, *args):
    """Run ``fn(*args)`` once the worker's call has committed (now, if it is
    no inbox call or holds nothing uncommitted).

        after_commit(worker_ctx, dispatch, "customer_updated", {"customer_id": 4})
    """
    call = _call_of(worker_ctx)
    if call is None or not call.pending():
        return fn(*args)
    call.waiting.append((fn, args))
    return None


class AfterCommitSet:
    """A shared set (``mesh.pending``) whose additions wait for the worker's
    commit; reading and clearing go straight to it."""

    def __init__(self, ids, worker_ctx):
        self._ids = ids
        self._worker_ctx = worker_ctx

    def update(self, values):
        after_commit(self._worker_ctx, self._ids.update, list(values))

    def add(self, value):
        after_commit(self._worker_ctx, self._ids.add, value)

    def __getattr__(self, name):
        return getattr(self._ids, name)

    def __iter__(self):
        return iter(self._ids)

    def __len__(self):
        return len(self._ids)

    def __contains__(self, value):
        return value in self._ids


def after_commit_set(ids, worker_ctx):
    """``ids`` (a set shared by a service's workers) as this worker adds to
    it: in an inbox call, additions wait for the call's commit."""
    if getattr(worker_ctx.data, "identity", None) is None:
        return ids
    return AfterCommitSet(ids, worker_ctx)
