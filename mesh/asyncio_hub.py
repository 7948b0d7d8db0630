"""The mesh's hub: eventlet's asyncio hub, without one wake-up per I/O event and
without a registration with the loop per socket read.

eventlet's asyncio hub runs its timers in a coroutine that sleeps on an
``asyncio.Event`` until the next timer, and sets that event after every file
descriptor callback as well as when a timer is added. On Python 3.11 every wake
of that coroutine costs a new task (``asyncio.wait_for`` wraps the event's wait
in one) and several turns of the loop; a greenthread's socket wait paid it
twice. Only a new or due timer, or a listener to tell that its file descriptor
is gone, gives the coroutine anything to do (what the woken greenthread
schedules goes through ``add_timer``, which wakes it), so this hub wakes it for
those only.

And every socket read that had to wait registered its file descriptor with the
loop (``loop.add_reader``) and unregistered it when woken (``remove_reader``):
about half of a wait's CPU, for a greenthread that, woken by a read, answers and
reads the same socket again before it yields (an AMQP connection, a database
connection, a keep-alive HTTP client, a request and its reply). This hub keeps
the registration through the callback that wakes a reader, and when control
comes back to the loop it keeps it only if someone waits on that file
descriptor again; otherwise it unregisters it there and then, as eventlet does.
So no registration outlives its waiters on the loop, which native asyncio code
shares (aio-pika in ``mesh.aio``): a green socket's close tells the hub nothing,
and a registration left behind for a closed descriptor would collide with the
next socket the OS gives that number. A registration is for one open file
(``os.fstat``'s device and inode, which eventlet's ``add`` reads anyway), so a
number reused inside a callback is registered again. Writes are registered per
wait as eventlet does.

Measured with ``bench/hub_bench.py`` (a socket round trip between two
greenthreads, CPU per round trip, min-median of 5 runs, Python 3.13): eventlet's
asyncio hub 46.7-46.9 us, this hub 24.4-24.6 us, epolls 25.0-25.3 us.

Selected by ``EVENTLET_HUB=mesh.asyncio_hub`` (eventlet's documented
``package.module`` form; ``mesh.hub.MESH_HUB``), which every way of starting the
mesh sets. It is the asyncio hub: its greenthreads run on asyncio's event loop,
and ``mesh.hub.hub_name()`` reports ``asyncio``. It overrides private methods of
eventlet's asyncio hub (``docs/upstream-internals.md``; ``tests/unit/test_upstream.py``
fails when the pin moves). Imports nothing of the mesh: eventlet imports it
while it monkey-patches, before anything else.
"""
import os
import sys

from eventlet.hubs import asyncio as eventlet_asyncio_hub
from eventlet.hubs import hub as eventlet_hub

READ = eventlet_hub.READ


def is_available():
    """eventlet asks every hub module before it uses it."""
    return eventlet_asyncio_hub.is_available()


class Hub(eventlet_asyncio_hub.Hub):
    """eventlet's asyncio hub; its timer coroutine wakes when a timer is added
    (eventlet's own ``add_timer``, which every spawn, sleep and switch back
    goes through), a timer is due or a file descriptor's waiters must be told
    it is gone, not after every I/O callback; a file descriptor read again
    stays registered with the loop."""

    def __init__(self):
        super().__init__()
        # fileno -> (st_dev, st_ino) of the file registered with the loop for reading
        self.reading = {}
        self.dispatching = None  # the file descriptor whose read callback runs

    def _file_cb(self, cb, fileno):
        # eventlet's own, without setting sleep_event afterwards
        try:
            cb(fileno)
        except self.SYSTEM_EXCEPTIONS:
            raise
        except BaseException:
            self.squelch_exception(fileno, sys.exc_info())

    def _read_cb(self, fileno):
        listener = self.listeners[READ].get(fileno)
        if listener is None:
            self.stop_reading(fileno)
            return
        # while the woken greenthread runs, its removal keeps the registration
        self.dispatching = fileno
        try:
            self._file_cb(listener.cb, fileno)
        finally:
            self.dispatching = None
        if self.listeners[READ].get(fileno) is None:  # it does not read again
            self.stop_reading(fileno)

    def add(self, evtype, fileno, cb, tb, mark_as_closed):
        try:
            opened = os.fstat(fileno)
        except OSError:
            raise ValueError("Invalid file descriptor")
        identity = (opened.st_dev, opened.st_ino)
        registered = self.reading.get(fileno)
        if registered is not None and registered != identity:
            # kept through a callback in which its file was closed and the
            # number handed to another file (a C library's socket: eventlet is
            # not told): the loop must not be asked to change the old one
            self.stop_reading(fileno)
            registered = None
        if evtype != READ:
            return super().add(evtype, fileno, cb, tb, mark_as_closed)
        listener = eventlet_hub.BaseHub.add(self, evtype, fileno, cb, tb, mark_as_closed)
        if registered is None:
            self.loop.add_reader(fileno, self._read_cb, fileno)
            self.reading[fileno] = identity
        return listener

    def remove(self, listener):
        if listener.evtype == READ and listener.fileno == self.dispatching:
            # woken by its read: whether to keep the registration is decided
            # when the callback returns (_read_cb)
            return eventlet_hub.BaseHub.remove(self, listener)
        super().remove(listener)  # eventlet's: unregisters once nobody waits
        if listener.evtype == READ and not self.listeners[READ].get(listener.fileno):
            self.reading.pop(listener.fileno, None)
        return None

    def stop_reading(self, fileno):
        if self.reading.pop(fileno, None) is not None:
            self.loop.remove_reader(fileno)

    def remove_descriptor(self, fileno):
        super().remove_descriptor(fileno)
        self.stop_reading(fileno)

    def _obsolete(self, fileno):
        # the waiters of a file descriptor the OS handed out again are told by
        # the timer coroutine (close_one): it must run now, not at the next timer
        found = super()._obsolete(fileno)
        self.stop_reading(fileno)
        if self.closed:
            self.sleep_event.set()
        return found
