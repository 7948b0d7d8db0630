"""The test vhosts: nameko's pipeline of fresh vhosts (``vhost_pipeline``, made
ahead in a greenthread), except that a failure to make one is retried and, if
it lasts, fails the tests that wait for a vhost instead of hanging them.

nameko's ``ResourcePipeline._create`` is a loop in a greenthread that ends at
the first exception of the management API, silently; every later test then
waits in ``rabbit_config`` for a vhost that never comes (seen in CI: the hang
watchdog's dump showed the test's main greenlet in ``vhost_pipeline.get()`` and
no greenthread making vhosts any more, after test_console). Each failure is
written to the process's stderr with its traceback, so the cause is in the
run's output.

    pipeline = VhostPipeline(vhost_maker(rabbit_manager, "guest"), vhost_dropper(rabbit_manager))
    with pipeline.run():          # tests/integration/conftest.py, once per session
        with pipeline.get() as vhost:
            ...
"""
import collections.abc
import random
import string
import sys
import traceback
from contextlib import contextmanager

import eventlet
from eventlet.queue import Empty
from nameko.testing.utils import ResourcePipeline

MAKE_ATTEMPTS = 5
RETRY_DELAY_S = 1.0


def report(text):
    """To the process's own stderr, at once (past pytest's capture)."""
    sys.__stderr__.write(text)
    sys.__stderr__.flush()


def retried(action, what):
    """``action()``, tried MAKE_ATTEMPTS times RETRY_DELAY_S apart; each failure
    is reported with its traceback, the last one raised."""
    for attempt in range(1, MAKE_ATTEMPTS + 1):
        try:
            return action()
        except Exception:  # noqa: BLE001  written out, then retried or raised
            report("\n{} failed (attempt {} of {}):\n{}".format(
                what, attempt, MAKE_ATTEMPTS, traceback.format_exc()))
            if attempt == MAKE_ATTEMPTS:
                raise
            eventlet.sleep(RETRY_DELAY_S)


def vhost_maker(rabbit_manager, username):
    """What nameko's ``vhost_pipeline`` makes: a vhost with a random name that
    ``username`` may use wholly; retried."""
    def make_vhost():
        vhost = "nameko_test_{}".format("".join(random.choice(string.ascii_lowercase)
                                                for _ in range(10)))

        def create():
            rabbit_manager.create_vhost(vhost)
            rabbit_manager.set_vhost_permissions(vhost, username, ".*", ".*", ".*")
        retried(create, "making the test vhost {}".format(vhost))
        return vhost
    return make_vhost


def vhost_dropper(rabbit_manager):
    """What nameko's ``vhost_pipeline`` does with a used vhost: delete it, then
    close kombu's pooled connections to it; retried."""
    def drop_vhost(vhost):
        from kombu.pools import connections
        retried(lambda: rabbit_manager.delete_vhost(vhost),
                "deleting the test vhost {}".format(vhost))
        for key, pool in list(connections.items()):
            # kombu keys a pool by its connection's fields (a list): the fifth is the vhost
            if isinstance(key, collections.abc.Sequence) and len(key) > 4 and key[4] == vhost:
                pool.force_close_all()
    return drop_vhost


class VhostPipeline(ResourcePipeline):
    """nameko's ``ResourcePipeline`` whose ``get`` raises what ended the
    greenthread making the vhosts, instead of waiting for a vhost forever."""

    @contextmanager
    def get(self):
        while True:
            try:
                vhost = self.ready.get(timeout=1)
                break
            except Empty:
                if self.create_thread.dead:
                    self.create_thread.wait()  # raises what ended it
                    raise RuntimeError("the greenthread making test vhosts has ended")
        try:
            yield vhost
        finally:
            self.trash.put(vhost)

