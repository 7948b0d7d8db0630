"""Services written as coroutines, for tests/integration/test_coroutines.py:
one that sleeps in a greenthread, one that awaits, and one that awaits both."""
import asyncio
import logging
import time

import eventlet
from sqlalchemy import Column, Integer, String, func, select
from sqlalchemy.orm import declarative_base

from contracts.errors import NotFound
from mesh.coroutines import in_greenthread
from mesh.db import MeshDatabase
from mesh.events import ChangeEvents, event_handler
from mesh.proxy import MeshRpcProxy
from mesh.rpc import rpc
from mesh.service import MeshService
from mesh.timer import timer

log = logging.getLogger(__name__)

RecordsBase = declarative_base()
# what the coroutines saw, for the test to read (the services run in its process)
SEEN = {"cancelled": [], "events": [], "ticks": 0}


class Record(RecordsBase):
    __tablename__ = "records"
    id = Column(Integer, primary_key=True)
    label = Column(String(40), nullable=False)


class SleeperService(MeshService):
    """Sleeps in its greenthread: the synchronous way."""

    name = "sleeper"
    changes = ChangeEvents()

    @rpc
    def sleep(self, seconds):
        eventlet.sleep(seconds)
        self.changes("slept", {"seconds": seconds})
        return seconds

    @rpc
    def fail(self):
        raise NotFound("nothing here")


class AsyncSleeperService(MeshService):
    """Sleeps as a coroutine."""

    name = "async_sleeper"

    @rpc
    async def sleep(self, seconds):
        await asyncio.sleep(seconds)
        return seconds


class CallerService(MeshService):
    """Calls fan_out as mesh services call each other: with a deadline
    (RPC_TIMEOUT from now) in the message."""

    name = "caller"
    fan_out = MeshRpcProxy("fan_out")

    @rpc
    def sleep_then_record(self, seconds, label):
        return self.fan_out.sleep_then_record(seconds, label)


class FanOutService(MeshService):
    """Awaits the other two, in parallel."""

    name = "fan_out"
    db = MeshDatabase(RecordsBase)
    sleeper = MeshRpcProxy("sleeper")
    async_sleeper = MeshRpcProxy("async_sleeper")

    @rpc
    async def both(self, sync_s, async_s):
        log.info("fanning out")
        started = time.monotonic()
        answers = await asyncio.gather(self.sleeper.sleep(sync_s),
                                       self.async_sleeper.sleep(async_s))
        await in_greenthread(lambda: log.info("in a greenthread"))
        return {"answers": answers, "took": time.monotonic() - started}

    @rpc
    async def relay_failure(self):
        return await self.sleeper.fail()

    @rpc
    async def sleep_then_record(self, seconds, label):
        try:
            await self.sleeper.sleep(seconds)
        except asyncio.CancelledError:
            SEEN["cancelled"].append(label)
            raise
        await in_greenthread(self._record, label)
        return label

    @rpc
    def count_records(self):
        with self.db.get_session() as session:
            return session.scalar(select(func.count(Record.id)))

    def _record(self, label):
        with self.db.get_session() as session:
            session.add(Record(label=label))

    @event_handler("sleeper", "slept")
    async def note_sleep(self, payload):
        await asyncio.sleep(0)
        SEEN["events"].append(payload)

    @timer(interval=0.1)
    async def tick(self):
        await asyncio.sleep(0)
        SEEN["ticks"] += 1
