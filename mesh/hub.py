"""Which event loop runs the mesh: eventlet's asyncio hub, always.

eventlet picks its hub once, when a process first uses it, from the documented
``EVENTLET_HUB`` variable; ``nameko run`` uses it (``eventlet.monkey_patch()``)
before any code of the mesh is imported, so the hub cannot be switched from
inside a service module (asyncio's selectors would already be green).
Every way the mesh starts therefore sets the variable first:

* ``.venv``: ``make setup`` puts ``tools/billing_mesh.pth`` in its site-packages,
  which sets ``EVENTLET_HUB=mesh.asyncio_hub`` (eventlet's asyncio hub, see
  ``mesh.asyncio_hub``) as a default for every Python process of the
  venv (``nameko run``, ``nameko shell``, ``nameko test`` typed by hand included);
* the Dockerfile sets it in the image's environment;
* anywhere else, ``ensure_asyncio_hub`` (called by ``services/__init__.py``)
  starts ``nameko run`` again with the variable set, once.

A hub named explicitly (``EVENTLET_HUB=epolls``: the benchmark's comparison) is
respected.
"""
import os
import sys

HUB_VARIABLE = "EVENTLET_HUB"
ASYNCIO_HUB = "asyncio"  # the name hub_name() reports
# what the mesh sets EVENTLET_HUB to: eventlet's asyncio hub, as mesh.asyncio_hub
# refines it (eventlet's documented "package.module" form of the variable)
MESH_HUB = "mesh.asyncio_hub"
# set on the re-executed process, so a failed switch cannot loop
REEXEC_MARK = "BILLING_MESH_HUB_REEXEC"


def hub_name():
    """The running hub's name: ``"asyncio"`` (eventlet's asyncio hub, the mesh's
    ``mesh.asyncio_hub`` included), ``"epolls"``, ... as ``EVENTLET_HUB`` names
    eventlet's own hubs (``"asyncio+uvloop"`` when uvloop's loop runs under the
    asyncio hub)."""
    import eventlet.hubs

    hub = eventlet.hubs.get_hub()
    loop = getattr(hub, "loop", None)  # only the asyncio hub (and its subclasses) has one
    if loop is None:
        return type(hub).__module__.rsplit(".", 1)[-1]
    if type(loop).__module__.startswith("uvloop"):
        return ASYNCIO_HUB + "+uvloop"
    return ASYNCIO_HUB


def on_asyncio_hub():
    """True when this process's greenthreads run on asyncio's event loop."""
    return hub_name().startswith(ASYNCIO_HUB)


def _started_by_nameko_run(argv):
    return len(argv) > 1 and os.path.basename(argv[0]) == "nameko" and argv[1] == "run"


def ensure_asyncio_hub(argv=None, environ=None, execv=os.execve):
    """Under ``nameko run`` on another hub with ``EVENTLET_HUB`` unset: run the same
    command again on the asyncio hub (one line on stderr says so). Elsewhere, or
    when a hub was asked for by name: nothing."""
    argv = sys.argv if argv is None else argv
    environ = os.environ if environ is None else environ
    if environ.get(HUB_VARIABLE) or environ.get(REEXEC_MARK):
        return False
    if not _started_by_nameko_run(argv) or on_asyncio_hub():
        return False
    print("billing-mesh: starting again on eventlet's asyncio hub ({}={})".format(
        HUB_VARIABLE, MESH_HUB), file=sys.stderr, flush=True)
    env = dict(environ, **{HUB_VARIABLE: MESH_HUB, REEXEC_MARK: "1"})
    execv(sys.executable, [sys.executable] + list(argv), env)
    return True  # only reached with a fake execv (the tests)


def mesh_environment(environ=None, hub=MESH_HUB):
    """The environment of a mesh process the launcher, the tests or the benchmark
    start: ``environ`` with the hub set (``hub=None``: left as it is)."""
    env = dict(os.environ if environ is None else environ)
    if hub:
        env[HUB_VARIABLE] = hub
    return env


class StopOnSignal:
    """SIGTERM handled by the event loop itself.

    ``nameko run`` installs a plain ``signal.signal`` handler that schedules the
    stop on the hub. On the asyncio hub nothing wakes the loop for it: asyncio
    only hears a signal through the wake-up fd that ``loop.add_signal_handler``
    sets, so the stop waited for the next timer or socket, or for ever in a quiet
    process. Here the loop runs nameko's own handler at once, and only for the
    first signal (a second one made nameko stop its timers twice, which fails).
    Installed once per process, when a service starts, and only where ``nameko
    run`` installed its handler (not inside the tests' runners).
    """

    installed = False

    @classmethod
    def install(cls):
        import asyncio
        import logging
        import signal
        import threading

        if cls.installed or not on_asyncio_hub():
            return
        if threading.current_thread() is not threading.main_thread():
            return
        nameko_handler = signal.getsignal(signal.SIGTERM)
        if getattr(nameko_handler, "__module__", "") != "nameko.cli.run":
            return
        loop = asyncio.get_event_loop()
        log = logging.getLogger(__name__)
        received = []

        def on_signal(signum):
            if received:
                log.info("already stopping (signal %d ignored)", signum)
                return
            received.append(signum)
            nameko_handler(signum, None)

        loop.add_signal_handler(signal.SIGTERM, on_signal, signal.SIGTERM)
        cls.installed = True
