"""The mesh's hub (``mesh.asyncio_hub``): eventlet's asyncio hub whose timers run
as loop callbacks instead of a coroutine woken after every I/O event. What that
coroutine did must still happen: greenthreads woken by sockets, timers in time
and in order, a closed socket's waiter told at once, the hub stopped and started,
an exception out of a turn raised out of the hub.
Each case runs in a process of its own (a process picks its hub once)."""
import json
import os
import subprocess
import sys

import eventlet.hubs

import mesh.asyncio_hub
from common.config import ROOT
from mesh.hub import HUB_VARIABLE, MESH_HUB, hub_name


# what the cases share: round trips between two greenthreads, what one read got
# (or the name of what it raised), and a socket pair whose first socket has the
# number a closed one had (the OS hands the lowest out)
HELPERS = """
def round_trips(ours, theirs, n):
    def echo():
        for _ in range(n):
            theirs.sendall(theirs.recv(16))
    eventlet.spawn(echo)
    for _ in range(n):
        ours.sendall(b"x")
        assert ours.recv(16) == b"x"
def tell_what_a_read_got(sock, told):
    try:
        sock.recv(16)
        told.send("received")
    except Exception as exc:
        told.send(type(exc).__name__)
def pair_with_number(socketpair, number):
    for _ in range(20):
        ours, theirs = socketpair()
        if ours.fileno() == number:
            return ours, theirs
    raise AssertionError("the OS gave another number")
"""


def run_on_the_mesh_hub(code, timeout=30):
    env = dict(os.environ, **{HUB_VARIABLE: MESH_HUB})
    prelude = ("import eventlet\neventlet.monkey_patch()\nimport eventlet.hubs, socket, time\n"
               "import mesh.asyncio_hub\n"
               "assert type(eventlet.hubs.get_hub()) is mesh.asyncio_hub.Hub\n" + HELPERS)
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


def test_a_timer_added_before_the_pending_one_fires_at_its_own_time():
    # the loop holds one call_at for the earliest timer: a sooner one added
    # later (from a read callback, then from a greenthread) must move it
    out = run_on_the_mesh_hub("""
ours, theirs = socket.socketpair()
fired = []
started = time.monotonic()
eventlet.spawn_after(1.5, fired.append, "late")
def woken():
    theirs.recv(16)
    eventlet.spawn_after(0.1, lambda: fired.append(("from a read", round(time.monotonic() - started, 1))))
eventlet.spawn(woken)
eventlet.sleep(0)
ours.sendall(b"x")
eventlet.spawn_after(0.3, lambda: fired.append(("spawned", round(time.monotonic() - started, 1))))
eventlet.sleep(0.5)
print(fired)
""")
    assert out.strip() == "[('from a read', 0.1), ('spawned', 0.3)]"


def test_a_reply_handed_on_in_a_read_callback_wakes_its_waiter_in_the_same_turn():
    # as epolls does after its poll: the relay's Event.send adds a timer due now,
    # fired when the relay's read callback returns, before the next socket's
    # callback of the same turn (a call_soon would run it a turn later, after it)
    out = run_on_the_mesh_hub("""
from eventlet.event import Event
first, first_peer = socket.socketpair()
second, second_peer = socket.socketpair()
order = []
handed = Event()
def relay():
    first_peer.recv(16)
    order.append("relay read")
    handed.send()
    first_peer.recv(16)
def other():
    second_peer.recv(16)
    order.append("other read")
def waiter():
    handed.wait()
    order.append("handed on")
for body in (relay, other, waiter):
    eventlet.spawn(body)
eventlet.sleep(0)
first.sendall(b"x")
second.sendall(b"x")  # both readable in one turn of the loop, the relay's first
eventlet.sleep(0.1)
print(order)
""")
    assert out.strip() == "['relay read', 'handed on', 'other read']", out


def test_the_hub_stops_when_aborted_and_runs_again_when_switched_to():
    out = run_on_the_mesh_hub("""
hub = eventlet.hubs.get_hub()
fired = []
eventlet.spawn_after(0.05, fired.append, 1)
eventlet.sleep(0.1)
hub.abort(wait=True)  # back in the main greenlet once the loop has stopped
print(hub.running, hub.loop.is_running(), fired)
eventlet.spawn_after(0.05, fired.append, 2)
eventlet.sleep(0.1)  # a switch to the hub starts it again
print(hub.running, fired)
""")
    assert out.split("\n")[:2] == ["False False [1]", "True [1, 2]"]


def test_an_exception_out_of_a_timers_run_leaves_the_hub_as_on_eventlets_hubs():
    # eventlet's hubs let what a turn of their loop raises out of the hub, into
    # its parent (the main greenlet here); asyncio would log it from a callback
    # and go on, and the timers left on the heap would never fire: here the turn
    # at 0.3 s raises before it fires "later", and no timer is added after it
    out = run_on_the_mesh_hub("""
from types import SimpleNamespace
hub = eventlet.hubs.get_hub()
def refuse(exc):
    raise RuntimeError("a listener refused to be told")
waiter = eventlet.spawn(eventlet.sleep, 10)
later = []
eventlet.spawn_after(0.1, lambda: hub.closed.append(SimpleNamespace(greenlet=waiter, tb=refuse)))
eventlet.spawn_after(0.3, later.append, "fired")
try:
    eventlet.sleep(1)
    print("nothing raised")
except RuntimeError as exc:
    print("raised here:", exc)
eventlet.sleep(0.5)
print(later)
""", timeout=10)
    assert out.split("\n")[:2] == ["raised here: a listener refused to be told", "['fired']"], out


def test_a_waiter_on_a_file_descriptor_reused_under_it_is_told_at_once():
    # eventlet obsoletes the listeners of a file descriptor the OS hands out
    # again (notify_opened). Here a greenthread woken by I/O does it, then waits
    # on: nothing else in the process would wake the timer loop
    out = run_on_the_mesh_hub("""
from eventlet.event import Event
ours, theirs = socket.socketpair()
waited, _ = socket.socketpair()
result = Event()
def reuser():
    theirs.recv(16)
    eventlet.hubs.notify_opened(waited.fileno())
    theirs.recv(16)
eventlet.spawn(tell_what_a_read_got, waited, result)
eventlet.spawn(reuser)
eventlet.sleep(0)
started = time.monotonic()
ours.sendall(b"reused")
answer = result.wait()
print(answer, round(time.monotonic() - started, 1))
""", timeout=20)
    answer, took = out.split()
    assert answer != "received" and float(took) < 1.0, out


def test_a_socket_read_again_stays_registered_with_the_loop():
    out = run_on_the_mesh_hub("""
hub = eventlet.hubs.get_hub()
added = []
real_add_reader = hub.loop.add_reader
hub.loop.add_reader = lambda fd, *args: added.append(fd) or real_add_reader(fd, *args)
ours, theirs = socket.socketpair()
round_trips(ours, theirs, 200)
print(added.count(ours.fileno()), added.count(theirs.fileno()))
""")
    assert out.split() == ["1", "1"], out


def test_a_file_descriptor_number_given_to_another_socket_is_registered_again():
    # the old socket closes; the OS hands its number to a new socket: its reads
    # must be woken, registered for the new file
    out = run_on_the_mesh_hub("""
import os
hub = eventlet.hubs.get_hub()
first, peer = socket.socketpair()
round_trips(first, peer, 3)
number = first.fileno()
first.close()
peer.close()
ours, theirs = pair_with_number(socket.socketpair, number)
with eventlet.Timeout(5):
    round_trips(ours, theirs, 3)
print("woken", hub.selector.files[number] == (os.fstat(number).st_dev, os.fstat(number).st_ino))
""")
    assert out.split() == ["woken", "True"], out


def test_no_registration_outlives_its_readers_on_the_shared_loop():
    # a green socket read once, then closed (which tells the hub nothing); a
    # native socket on the loop (as aio-pika's) gets its number: its reader works
    out = run_on_the_mesh_hub("""
import eventlet.patcher
hub = eventlet.hubs.get_hub()
green, peer = socket.socketpair()
def reader():
    green.recv(16)  # woken once, then this greenthread ends
eventlet.spawn(reader)
eventlet.sleep(0)
peer.sendall(b"x")
eventlet.sleep(0.05)
number = green.fileno()
left = number in hub.reading
green.close()
peer.close()
ours, theirs = pair_with_number(eventlet.patcher.original("socket").socketpair, number)
ours.setblocking(False)
got = []
hub.loop.add_reader(ours.fileno(), lambda: got.append(ours.recv(16)))
theirs.send(b"native")
eventlet.sleep(0.05)
print(left, got)
""")
    assert out.split() == ["False", "[b'native']"], out


def test_a_number_reused_inside_a_read_callback_by_a_c_librarys_socket_can_wait_to_write():
    # as psycopg reconnecting: woken by a read, the greenthread closes that
    # socket, a socket made outside eventlet gets the number, and it waits to write
    out = run_on_the_mesh_hub("""
import eventlet.patcher
from eventlet.event import Event
hub = eventlet.hubs.get_hub()
native = eventlet.patcher.original("socket")
green, peer = socket.socketpair()
done = Event()
def reconnect():
    green.recv(16)
    number = green.fileno()
    green.close()
    ours, theirs = pair_with_number(native.socketpair, number)
    ours.setblocking(False)
    eventlet.hubs.trampoline(ours.fileno(), write=True, timeout=2)
    eventlet.hubs.trampoline(ours.fileno(), write=True, timeout=2)  # and again
    theirs.send(b"y")
    eventlet.hubs.trampoline(ours.fileno(), read=True, timeout=2)
    done.send(ours.recv(16))
eventlet.spawn(reconnect)
eventlet.sleep(0)
peer.sendall(b"x")
print(done.wait())
""")
    assert out.strip() == "b'y'", out


def test_a_socket_closed_under_its_waiting_reader_leaves_its_number_free_for_native_sockets():
    # a greenthread waits to read; another closes that socket (which tells the
    # hub nothing, and the kernel drops the file from the loop's epoll). A
    # native socket on the loop (aio-pika's connect) gets the number: it must be
    # registered for itself, and the waiter is told its file is gone
    out = run_on_the_mesh_hub("""
import eventlet.patcher, json
from eventlet.event import Event
hub = eventlet.hubs.get_hub()
green, peer = socket.socketpair()
told = Event()
eventlet.spawn(tell_what_a_read_got, green, told)
eventlet.sleep(0.05)
number = green.fileno()
green.close()
ours, theirs = pair_with_number(eventlet.patcher.original("socket").socketpair, number)
ours.setblocking(False)
got = []
hub.loop.add_reader(ours.fileno(), lambda: got.append(ours.recv(16)))
hub.loop.add_writer(ours.fileno(), lambda: got.append("writable") or hub.loop.remove_writer(ours.fileno()))
theirs.send(b"native")
eventlet.sleep(0.05)
with eventlet.Timeout(1):
    print(told.wait(), json.dumps(sorted(map(str, got))))
""")
    answer, got = out.split(" ", 1)
    assert answer != "received" and json.loads(got) == ["b'native'", "writable"], out


def test_a_registration_the_platform_refused_to_change_leaves_nothing_behind():
    # eventfds share one inode: a number reused between two looks like the same
    # file, so the change goes to epoll, which refuses it (as before the check).
    # A green socket that gets the number next must still wait on it
    out = run_on_the_mesh_hub("""
import os
hub = eventlet.hubs.get_hub()
first = os.eventfd(0)
hub.loop.add_reader(first, lambda: None)  # left behind by native code
os.close(first)
second = os.eventfd(0)
assert second == first, "the OS gave another number"
try:
    hub.loop.add_writer(second, lambda: None)
except OSError as exc:
    refused = type(exc).__name__
os.close(second)
ours, theirs = pair_with_number(socket.socketpair, first)
with eventlet.Timeout(5):
    round_trips(ours, theirs, 3)
print(refused, "woken")
""")
    assert out.split() == ["FileNotFoundError", "woken"], out
