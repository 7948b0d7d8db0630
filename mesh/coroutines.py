"""Coroutines in the mesh: ``async def`` entrypoints, awaitable proxies, and the
bridge between greenthreads and asyncio tasks (eventlet's second migration step).

Every mesh process runs on eventlet's asyncio hub (``mesh.hub``): one asyncio
event loop runs both the greenthreads of nameko and any asyncio task. So:

* The mesh's ``rpc``, ``http``, ``event_handler``/``evicts_on`` and ``timer``
  take ``async def`` methods. nameko calls every entrypoint in a worker
  greenthread; for a coroutine method that greenthread runs it as an asyncio
  task on the loop and waits for it (``run_coroutine``), within the call's
  deadline: past it the task is cancelled and the caller gets
  ``DeadlineExceeded`` (503).
* Inside a coroutine, a declarative proxy's call is awaitable
  (``await self.inventory.get_products(ids)``; ``asyncio.gather`` for calls in
  parallel): ``mesh.proxy`` sees that it is called from the loop's own greenlet
  and hands the wait to a greenthread (``in_greenthread``).
* Blocking code that uses green I/O (a database session, a kombu publish) must
  not run on the loop's greenlet, where nothing could switch away from it:
  ``await in_greenthread(self._store, bill)`` runs it in a greenthread and
  awaits its result.

    class BillingService(MeshService):
        inventory = MeshRpcProxy("inventory")

        @rpc
        async def get_full_bill(self, bill_id):
            bill = await in_greenthread(self._load, bill_id)
            customer, products = await asyncio.gather(
                self.customers.get_customer(bill["customer_id"]),
                self.inventory.get_products(bill["product_ids"]))

Context data (the request id of every log line, the deadline) is in
``contextvars`` (``mesh.tracing``): a task started from a worker copies its
context, so log lines inside a coroutine carry the request's id.
"""
import asyncio
import contextvars
import functools
import inspect
import time

import eventlet
from eventlet.event import Event
from eventlet.hubs import get_hub

from contracts.errors import DeadlineExceeded
from mesh.tracing import current_deadline


def on_loop_greenlet():
    """True inside asyncio code (a coroutine, a loop callback): the hub's own
    greenlet, which must never block on green I/O."""
    return eventlet.getcurrent() is get_hub().greenlet


def run_coroutine(coroutine, deadline=None, name="coroutine"):
    """From a greenthread: run ``coroutine`` as a task on the loop and wait for
    its result. Past ``deadline`` (epoch seconds) the task is cancelled and
    ``DeadlineExceeded`` raised; a greenthread killed while waiting (the service
    is killed) cancels the task too."""
    try:
        loop = asyncio.get_running_loop()
    except RuntimeError:
        if getattr(get_hub(), "loop", None) is None:
            coroutine.close()
            raise RuntimeError(
                "{} is a coroutine: it needs eventlet's asyncio hub, and this process "
                "runs on another (start it with EVENTLET_HUB=asyncio)".format(name))
        # the main greenlet, outside the loop (a test calling a worker): a greenthread runs it
        return eventlet.spawn(run_coroutine, coroutine, deadline, name).wait()
    if deadline is not None:
        coroutine = _within(coroutine, float(deadline), name)
    task = loop.create_task(coroutine)
    done = Event()
    task.add_done_callback(lambda _: done.send(None))
    try:
        done.wait()
    except BaseException:
        task.cancel()
        raise
    return task.result()


async def _within(coroutine, deadline, name):
    # asyncio.timeout cancels this task itself; Python 3.11's wait_for would run
    # the coroutine in a second task, one more for every coroutine entrypoint
    try:
        async with asyncio.timeout(max(deadline - time.time(), 0)):
            return await coroutine
    except TimeoutError:
        raise DeadlineExceeded("{} did not finish by its caller's deadline".format(name))


async def in_greenthread(function, *args, **kwargs):
    """Await ``function(*args, **kwargs)`` run in a greenthread: for blocking
    code with green I/O (database sessions, kombu) inside a coroutine.

        >>> bill = await in_greenthread(self._load, 7)

    A cancelled await (a deadline) kills the greenthread at its next switch; a
    database session then rolls back, and ``mesh.db`` refuses commits past the
    deadline anyway.
    """
    loop = asyncio.get_running_loop()
    future = loop.create_future()
    # the greenthread runs in this task's context: its log lines keep the request id
    context = contextvars.copy_context()

    def run():
        try:
            result = function(*args, **kwargs)
        except BaseException as exc:  # noqa: BLE001  handed to the awaiting task
            if not future.done():
                future.set_exception(exc if isinstance(exc, Exception)
                                     else asyncio.CancelledError())
        else:
            if not future.done():
                future.set_result(result)

    thread = eventlet.spawn(context.run, run)
    try:
        return await future
    except asyncio.CancelledError:
        thread.kill()
        raise


async def run_to_completion(function, *args, settle=None):
    """Await ``function(*args)`` run in a greenthread that a cancelled await does
    *not* stop: for a database transaction, which is never cut in half (a
    greenthread killed during a PostgreSQL commit cannot tell whether it
    committed). When the awaiting task is cancelled, the greenthread goes on,
    and ``settle(result, error)`` is called when it ends (to give back what the
    cancelled work held, should the transaction have failed).

        >>> bill, event = await run_to_completion(self._store, request, reservation,
        ...                                       settle=self._release_unless_stored)
    """
    loop = asyncio.get_running_loop()
    future = loop.create_future()
    context = contextvars.copy_context()
    state = {"outcome": None, "cancelled": False, "settled": False}

    def settle_once():
        if settle is not None and not state["settled"]:
            state["settled"] = True
            settle(*state["outcome"])

    def run():
        try:
            state["outcome"] = (function(*args), None)
        except Exception as exc:  # noqa: BLE001  handed to the awaiting task
            state["outcome"] = (None, exc)
        if state["cancelled"] or future.cancelled():
            settle_once()
        elif state["outcome"][1] is None:
            future.set_result(state["outcome"][0])
        else:
            future.set_exception(state["outcome"][1])

    eventlet.spawn(context.run, run)
    try:
        return await future
    except asyncio.CancelledError:
        state["cancelled"] = True
        if state["outcome"] is not None:
            settle_once()  # it ended just before the cancellation arrived
        raise


def synchronous_worker(method):
    """``method`` as nameko calls it: a coroutine function becomes a plain
    function that runs it (``run_coroutine``) within the worker's deadline, with
    ``method``'s own signature (nameko checks call arguments against it); any
    other function is returned as it is."""
    if not inspect.iscoroutinefunction(method):
        return method

    @functools.wraps(method)
    def worker(*args, **kwargs):
        return run_coroutine(method(*args, **kwargs), deadline=current_deadline(),
                             name=method.__qualname__)

    worker.__signature__ = inspect.signature(method)
    worker.is_coroutine = True
    return worker


def accepting_coroutines(decorator):
    """A nameko entrypoint decorator (``@rpc``, ``@rpc(...)``) that also takes
    ``async def`` methods."""

    @functools.wraps(decorator)
    def mesh_decorator(*args, **kwargs):
        if len(args) == 1 and not kwargs and inspect.isfunction(args[0]):
            return decorator(synchronous_worker(args[0]))  # @rpc without arguments
        registering = decorator(*args, **kwargs)
        return lambda method: registering(synchronous_worker(method))

    return mesh_decorator
