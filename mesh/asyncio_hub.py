"""The mesh's hub: eventlet's asyncio hub, without one wake-up per I/O event.

eventlet's asyncio hub runs its timers in a coroutine that sleeps on an
``asyncio.Event`` until the next timer, and sets that event after every file
descriptor callback as well as when a timer is added. On Python 3.11 every wake
of that coroutine costs a new task (``asyncio.wait_for`` wraps the event's wait
in one) and several turns of the loop; a greenthread's socket wait paid it
twice. Only a new or due timer, or a listener to tell that its file descriptor
is gone, gives the coroutine anything to do (what the woken greenthread
schedules goes through ``add_timer``, which wakes it), so this hub wakes it for
those only: a socket round trip between two greenthreads took
about a quarter less CPU (``bench/hub_bench.py``).

Selected by ``EVENTLET_HUB=mesh.asyncio_hub`` (eventlet's documented
``package.module`` form; ``mesh.hub.MESH_HUB``), which every way of starting the
mesh sets. It is the asyncio hub: its greenthreads run on asyncio's event loop,
and ``mesh.hub.hub_name()`` reports ``asyncio``. It overrides private methods of
eventlet's asyncio hub (``docs/upstream-internals.md``; ``tests/unit/test_upstream.py``
fails when the pin moves). Imports nothing of the mesh: eventlet imports it
while it monkey-patches, before anything else.
"""
import sys

from eventlet.hubs import asyncio as eventlet_asyncio_hub


def is_available():
    """eventlet asks every hub module before it uses it."""
    return eventlet_asyncio_hub.is_available()


class Hub(eventlet_asyncio_hub.Hub):
    """eventlet's asyncio hub; its timer coroutine wakes when a timer is added
    (eventlet's own ``add_timer``, which every spawn, sleep and switch back
    goes through), a timer is due or a file descriptor's waiters must be told
    it is gone, not after every I/O callback."""

    def _file_cb(self, cb, fileno):
        # eventlet's own, without setting sleep_event afterwards
        try:
            cb(fileno)
        except self.SYSTEM_EXCEPTIONS:
            raise
        except BaseException:
            self.squelch_exception(fileno, sys.exc_info())

    def _obsolete(self, fileno):
        # the waiters of a file descriptor the OS handed out again are told by
        # the timer coroutine (close_one): it must run now, not at the next timer
        found = super()._obsolete(fileno)
        if self.closed:
            self.sleep_event.set()
        return found
