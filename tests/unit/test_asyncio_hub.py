"""The mesh's hub (``mesh.asyncio_hub``): eventlet's asyncio hub whose timer loop
is not woken after every I/O event. What that wake-up did must still happen:
greenthreads woken by sockets, timers, a closed socket's waiter told at once.
Each case runs in a process of its own (a process picks its hub once)."""
import os
import subprocess
import sys

import eventlet.hubs

import mesh.asyncio_hub
from common.config import ROOT
from mesh.hub import HUB_VARIABLE, MESH_HUB, hub_name


def run_on_the_mesh_hub(code, timeout=30):
    env = dict(os.environ, **{HUB_VARIABLE: MESH_HUB})
    prelude = ("import eventlet\neventlet.monkey_patch()\nimport eventlet.hubs, socket, time\n"
               "import mesh.asyncio_hub\n"
               "assert type(eventlet.hubs.get_hub()) is mesh.asyncio_hub.Hub\n")
    done = subprocess.run([sys.executable, "-c", prelude + code], cwd=ROOT, env=env,
                          capture_output=True, text=True, timeout=timeout, check=False)
    assert done.returncode == 0, done.stderr
    return done.stdout


def test_the_tests_themselves_run_on_the_mesh_hub():
    assert type(eventlet.hubs.get_hub()) is mesh.asyncio_hub.Hub, \
        "EVENTLET_HUB={} (make setup's .pth sets it)".format(os.environ.get(HUB_VARIABLE))
    assert hub_name() == "asyncio"


def test_greenthreads_talk_over_sockets_and_timers_fire():
    out = run_on_the_mesh_hub("""
ours, theirs = socket.socketpair()
def echo():
    for _ in range(1000):
        theirs.sendall(theirs.recv(16))
eventlet.spawn(echo)
for n in range(1000):
    ours.sendall(str(n % 10).encode())
    assert ours.recv(16) == str(n % 10).encode()
fired = []
eventlet.spawn_after(0.05, fired.append, "later")
started = time.monotonic()
eventlet.sleep(0.2)
print(fired, round(time.monotonic() - started, 1))
""")
    assert out.split() == ["['later']", "0.2"]


def test_a_greenthread_woken_by_a_socket_may_schedule_at_once():
    # the greenthread woken by I/O spawns another: add_timer wakes the timer loop
    # (the main greenthread waits on an event without timeout: nothing else would)
    out = run_on_the_mesh_hub("""
from eventlet.event import Event
ours, theirs = socket.socketpair()
done = Event()
def woken():
    theirs.recv(16)
    eventlet.spawn(lambda: done.send(time.monotonic()))
eventlet.spawn(woken)
eventlet.sleep(0)
sent = time.monotonic()
ours.sendall(b"x")
print(round(done.wait() - sent, 1))
""")
    assert out.strip() == "0.0"


def test_a_waiter_on_a_file_descriptor_reused_under_it_is_told_at_once():
    # eventlet obsoletes the listeners of a file descriptor the OS hands out
    # again (notify_opened). Here a greenthread woken by I/O does it, then waits
    # on: nothing else in the process would wake the timer loop
    out = run_on_the_mesh_hub("""
from eventlet.event import Event
ours, theirs = socket.socketpair()
waited, _ = socket.socketpair()
result = Event()
def waiter():
    try:
        waited.recv(16)
        result.send("received")
    except Exception as exc:
        result.send(type(exc).__name__)
def reuser():
    theirs.recv(16)
    eventlet.hubs.notify_opened(waited.fileno())
    theirs.recv(16)
eventlet.spawn(waiter)
eventlet.spawn(reuser)
eventlet.sleep(0)
started = time.monotonic()
ours.sendall(b"reused")
answer = result.wait()
print(answer, round(time.monotonic() - started, 1))
""", timeout=20)
    answer, took = out.split()
    assert answer != "received" and float(took) < 1.0, out
