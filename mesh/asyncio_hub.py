"""The mesh's hub: eventlet's asyncio hub, with its timers run by loop callbacks
instead of a coroutine, and without a registration with the loop per socket read.

eventlet's asyncio hub runs its timers in a coroutine that sleeps on an
``asyncio.Event`` until the next timer, and sets that event after every file
descriptor callback as well as when a timer is added. Every wake of that
coroutine costs a new task (``asyncio.wait_for`` wraps the event's wait in one
on Python 3.11), a timeout handle, and several turns of the loop; a greenthread
woken by a read that hands a message on (``Event.send``, the way a nameko reply
reaches its caller) or that reads with a timeout (kombu's, every socket with
``settimeout``) adds a timer from a loop callback and so pays a wake each time.
This hub runs the timers where the loop runs its own: a timer due now asks the
loop for one ``call_soon`` of ``Hub.run_timers`` (one per turn of the loop, however
many timers), a later one for a ``call_at`` at the earliest timer's time, and
``Hub.run_timers`` fires what is due, then asks again for the next. A timer that
comes due inside a file descriptor's callback (a reader handing a reply on through
an ``Event``) is fired when that callback returns, in the same turn of the loop, as
epolls fires its timers right after its poll: a ``call_soon`` would cost it another
turn (a ``select``) first. ``run`` is
``loop.run_forever``; ``abort`` stops it at the next timers' run, as eventlet's
coroutine stopped at its next turn, and an exception out of a turn (a greenthread
that died of the ``IOClosed`` it was told) leaves ``run`` as it left that
coroutine, instead of being logged by asyncio with the chain of timer callbacks
broken.

And every socket read that had to wait registered its file descriptor with the
loop (``loop.add_reader``) and unregistered it when woken (``remove_reader``):
a large share of a wait's CPU, for a greenthread that, woken by a read, answers and
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

Measured with ``make bench-hub`` (``bench/hub_bench.py``; the figures are in
docs/benchmarks.md): the CPU of a socket round trip, of the same with a socket
timeout, and of a round trip whose reader hands the reply to the waiting
greenthread through an ``Event``, on eventlet's asyncio hub, this hub and epolls.

And the loop's selector (``FileCheckedSelector``) knows which open file each
registration is for. Closing a socket tells neither eventlet nor asyncio, and the
kernel drops the file from the loop's epoll (with its last descriptor); a
greenthread still waiting to read it (a connection closed by another greenthread)
leaves its registration behind.
Native asyncio code on the same loop (aio-pika) that gets that number for a new
socket would have its own registration taken for the old one: epoll refuses to
modify what it dropped (``FileNotFoundError`` out of aio-pika's connect), or a
reader is only swapped into the old key and never woken. The selector checks the
file before it changes a registration; one that outlived its file is dropped, its
greenthreads told as when eventlet learns a number was reused (``_obsolete``), and
the new socket registered for itself. Files the kernel gives one shared inode
(eventfd, timerfd, signalfd, epoll) look alike to that check: a number reused
among them is not seen. So the hub's loop is asyncio's selector loop
whatever the event loop policy names (uvloop's has no selector to check, and was
measured no faster under this hub: docs/benchmarks.md).

Selected by ``EVENTLET_HUB=mesh.asyncio_hub`` (eventlet's documented
``package.module`` form; ``mesh.hub.MESH_HUB``), which every way of starting the
mesh sets. It is the asyncio hub: its greenthreads run on asyncio's event loop,
and ``mesh.hub.hub_name()`` reports ``asyncio``. It overrides private methods of
eventlet's asyncio hub (``docs/upstream-internals.md``; ``tests/unit/test_upstream.py``
fails when the pin moves). Imports nothing of the mesh: eventlet imports it
while it monkey-patches, before anything else.
"""
import contextvars
import functools
import os
import sys

from eventlet import patcher
from eventlet.hubs import asyncio as eventlet_asyncio_hub
from eventlet.hubs import hub as eventlet_hub

READ = eventlet_hub.READ


def file_identity(fileno):
    """The open file behind ``fileno``: its device and inode (``OSError`` when closed)."""
    opened = os.fstat(fileno)
    return opened.st_dev, opened.st_ino


@functools.cache
def file_checked_selector_class():
    """``FileCheckedSelector``, made on first use: it derives from the original
    ``selectors`` module, the one asyncio uses under eventlet."""
    selectors = patcher.original("selectors")

    class FileCheckedSelector(selectors.DefaultSelector):
        """The platform's selector; each registration remembers its open file.
        A change to a registration whose file was closed since (the number now
        names another) drops it, calls ``registration_outlived_its_file(fileno)``,
        and registers only what the caller adds: asyncio's key data is a
        ``(reader, writer)`` pair of handles, and the halves it kept from the old
        key are the old file's."""

        def __init__(self, registration_outlived_its_file):
            super().__init__()
            self.files = {}  # fileno -> file_identity at registration
            self.registration_outlived_its_file = registration_outlived_its_file

        def register(self, fileobj, events, data=None):
            key = super().register(fileobj, events, data)
            try:
                self.files[key.fd] = file_identity(key.fd)
            except OSError:
                super().unregister(fileobj)
                raise
            return key

        def unregister(self, fileobj):
            key = super().unregister(fileobj)
            self.files.pop(key.fd, None)
            return key

        def modify(self, fileobj, events, data=None):
            old = self.get_key(fileobj)
            try:
                current = file_identity(old.fd)
            except OSError:
                current = None  # closed, its number not given out again
            if current == self.files.get(old.fd):
                try:
                    return super().modify(fileobj, events, data)
                except OSError:
                    # the platform's selector dropped the key (its own unregister)
                    self.files.pop(old.fd, None)
                    raise
            self.drop(old.fd)
            (reader, writer), (old_reader, old_writer) = data, old.data
            reader = None if reader is old_reader else reader
            writer = None if writer is old_writer else writer
            added = ((selectors.EVENT_READ if reader is not None else 0)
                     | (selectors.EVENT_WRITE if writer is not None else 0))
            if not added:
                return old
            return self.register(fileobj, added, (reader, writer))

        def drop_if_outlived(self, fileno, identity):
            """Drop ``fileno``'s registration if it was made for another file than
            ``identity``."""
            registered = self.files.get(fileno)
            if registered is not None and registered != identity:
                self.drop(fileno)

        def drop(self, fileno):
            if fileno in self.get_map():
                self.unregister(fileno)  # epoll forgot it with its file: only the key goes
            self.files.pop(fileno, None)
            self.registration_outlived_its_file(fileno)

    return FileCheckedSelector


def is_available():
    """eventlet asks every hub module before it uses it."""
    return eventlet_asyncio_hub.is_available()


class Hub(eventlet_asyncio_hub.Hub):
    """eventlet's asyncio hub; its timers are fired by a loop callback that the
    loop is asked for when a timer is added (eventlet's own ``add_timer``, which
    every spawn, sleep and switch back goes through) or when a file descriptor's
    waiters must be told it is gone; a file descriptor read again stays
    registered with the loop."""

    def __init__(self):
        super().__init__()
        self.selector = None  # the loop's FileCheckedSelector (_post_initialize)
        self.reading = set()  # file descriptors registered with the loop for reading
        self.dispatching = None  # the file descriptor whose read callback runs
        self.timers_soon = False  # a call_soon of run_timers is pending
        self.in_listener = False  # a file descriptor's listener runs (call_listener)
        self.timers_after_listener = False  # timers came due in it: run when it returns
        self.timers_later = None  # the pending call_at of run_timers
        self.timers_later_at = None  # its time on the loop's clock
        self.timers_context = contextvars.Context()
        self.turn_failed = None  # what the last turn raised, for run to raise

    def _post_initialize(self):
        # eventlet's, its loop made on a FileCheckedSelector: eventlet makes it
        # with asyncio.new_event_loop(), which is swapped for that one call
        import asyncio
        new_event_loop = asyncio.new_event_loop
        get_ident = patcher.original("_thread").get_ident
        this_thread = get_ident()

        def new_loop_on_a_file_checked_selector():
            if get_ident() != this_thread or self.selector is not None:
                return new_event_loop()  # another thread's loop, made meanwhile
            self.selector = file_checked_selector_class()(self.registration_outlived_its_file)
            return asyncio.SelectorEventLoop(self.selector)

        asyncio.new_event_loop = new_loop_on_a_file_checked_selector
        try:
            super()._post_initialize()
        finally:
            asyncio.new_event_loop = new_event_loop

    def registration_outlived_its_file(self, fileno):
        """The loop's registration of ``fileno`` was for a file closed since:
        the selector dropped it; its waiters are told as eventlet tells those of a
        number given out again."""
        self.reading.discard(fileno)
        self._obsolete(fileno)

    def add_timer(self, timer):
        # eventlet's own (BaseHub's), then the loop is asked to fire it in time
        # instead of eventlet's setting of its coroutine's sleep_event
        scheduled = eventlet_hub.BaseHub.add_timer(self, timer)
        self.wake_timers_in(timer.seconds)
        return scheduled

    def wake_timers_in(self, seconds):
        """Ask the loop to run ``run_timers`` within ``seconds`` from now."""
        if self.timers_soon or self.timers_after_listener:
            return  # it runs in this turn of the loop: it asks for the next itself
        loop = self.loop
        if seconds <= 0 and self.in_listener:
            # due now in a file descriptor's callback (the woken greenthread
            # hands a reply on through an Event, spawns, or sleeps 0): run when
            # the callback returns, in this turn of the loop, as epolls fires its
            # timers after its poll; a call_soon would cost another turn (a
            # select) for it. What those timers make due waits for the next turn
            self.timers_after_listener = True
            return
        if seconds <= 0:
            self.timers_soon = True
            loop.call_soon(self.run_timers_soon, context=self.timers_context)
            return
        at = loop.time() + seconds
        if self.timers_later_at is None or at < self.timers_later_at:
            if self.timers_later is not None:
                self.timers_later.cancel()
            self.timers_later_at = at
            self.timers_later = loop.call_at(at, self.run_timers_later, context=self.timers_context)
        # else a call comes at or before that time: it asks for the next one

    def run_timers_soon(self):
        self.timers_soon = False
        self.run_timers()

    def run_timers_later(self):
        self.timers_later = self.timers_later_at = None
        self.run_timers()

    def run_timers(self):
        """One turn of eventlet's run loop: listeners of closed file descriptors
        told, due timers fired; then the loop is asked for the next turn. What a
        turn raises stops the loop and leaves ``run`` (``turn_failed``), as it
        leaves eventlet's coroutine: asyncio would log it and go on, and the
        timers left on the heap would wait for the next ``add_timer``."""
        try:
            self.run_one_turn()
        except BaseException as exc:  # noqa: BLE001  raised again by run, out of the hub
            self.turn_failed = exc
            self.loop.stop()

    def run_one_turn(self):
        if self.stopping:
            self.loop.stop()
            return
        while self.closed:
            self.close_one()
        self.prepare_timers()
        if self.debug_blocking:
            self.block_detect_pre()
        self.fire_timers(self.clock())
        if self.debug_blocking:
            self.block_detect_post()
        self.prepare_timers()
        wakeup_when = self.sleep_until()
        if self.stopping:
            self.wake_timers_in(0)
        elif wakeup_when is not None:
            self.wake_timers_in(wakeup_when - self.clock())

    def run(self, *a, **kw):
        """The hub greenlet's body: the loop runs until ``abort``; timers are
        loop callbacks (``run_timers``), file descriptors the loop's readers and
        writers."""
        if self.running:
            raise RuntimeError("Already running!")
        self.running = True
        self.stopping = False
        try:
            self.timers_soon = False
            self.wake_timers_in(0)
            self.loop.run_forever()
            failed, self.turn_failed = self.turn_failed, None
            if failed is not None:
                raise failed  # to the hub greenlet's parent; the timers stay
            self.timers_canceled = 0  # stopped: eventlet drops what was scheduled
            del self.timers[:]
            del self.next_timers[:]
        finally:
            if self.timers_later is not None:
                self.timers_later.cancel()
            self.timers_soon = self.timers_after_listener = False
            self.timers_later = self.timers_later_at = None
            self.running = False
            self.stopping = False

    def _file_cb(self, cb, fileno):
        # eventlet's own (a writer's callback; readers' is _read_cb), without
        # setting sleep_event afterwards: what the woken greenthread schedules
        # goes through add_timer, and what came due runs before the loop goes on
        self.call_listener(cb, fileno)
        self.run_timers_come_due()

    def call_listener(self, cb, fileno):
        self.in_listener = True
        try:
            cb(fileno)
        except self.SYSTEM_EXCEPTIONS:
            raise
        except BaseException:
            self.squelch_exception(fileno, sys.exc_info())
        finally:
            self.in_listener = False

    def run_timers_come_due(self):
        if self.timers_after_listener:
            self.timers_after_listener = False
            self.run_timers()

    def _read_cb(self, fileno):
        listener = self.listeners[READ].get(fileno)
        if listener is None:
            self.stop_reading(fileno)
            return
        # while the woken greenthread runs, its removal keeps the registration
        self.dispatching = fileno
        try:
            self.call_listener(listener.cb, fileno)
        finally:
            self.dispatching = None
        self.run_timers_come_due()
        if self.listeners[READ].get(fileno) is None:  # it does not read again
            self.stop_reading(fileno)

    def add(self, evtype, fileno, cb, tb, mark_as_closed):
        try:
            identity = file_identity(fileno)
        except OSError:
            raise ValueError("Invalid file descriptor")
        # a registration left for a file closed since, its number now another
        # file's (a C library's socket, or one closed under its waiter: eventlet
        # is not told): dropped before this listener is added
        self.selector.drop_if_outlived(fileno, identity)
        if evtype != READ:
            return super().add(evtype, fileno, cb, tb, mark_as_closed)
        listener = eventlet_hub.BaseHub.add(self, evtype, fileno, cb, tb, mark_as_closed)
        if fileno not in self.reading:
            self.loop.add_reader(fileno, self._read_cb, fileno)
            self.reading.add(fileno)
        return listener

    def remove(self, listener):
        if listener.spent:
            # defanged by _obsolete, which removed it: its number may be another
            # file's registration now (eventlet's own remove would unregister it)
            return None
        if listener.evtype == READ and listener.fileno == self.dispatching:
            # woken by its read: whether to keep the registration is decided
            # when the callback returns (_read_cb)
            return eventlet_hub.BaseHub.remove(self, listener)
        super().remove(listener)  # eventlet's: unregisters once nobody waits
        if listener.evtype == READ and not self.listeners[READ].get(listener.fileno):
            self.reading.discard(listener.fileno)
        return None

    def stop_reading(self, fileno):
        if fileno in self.reading:
            self.reading.discard(fileno)
            self.loop.remove_reader(fileno)

    def remove_descriptor(self, fileno):
        super().remove_descriptor(fileno)
        self.stop_reading(fileno)

    def _obsolete(self, fileno):
        # the waiters of a file descriptor the OS handed out again are told by
        # run_timers (close_one): it must run now, not at the next timer
        found = super()._obsolete(fileno)
        self.stop_reading(fileno)
        if self.closed:
            self.wake_timers_in(0)
        return found
