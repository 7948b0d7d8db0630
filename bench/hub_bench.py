"""``make bench-hub``: what a trip through the hub costs on each eventlet hub.

    .venv/bin/python -m bench.hub_bench [--round-trips 20000] [--runs 5]

Two greenthreads of one process send one byte back and forth over a socket pair:
every round trip is two socket waits, each a trip through the hub. Three ways:

* ``plain``: blocking sockets, each greenthread reads its own;
* ``timeout``: the same with ``settimeout(5)`` on both sockets, as kombu's and most
  clients' sockets are: every wait adds a timer (and cancels it when woken);
* ``relay``: a third greenthread reads the replies and hands each to the sender
  through an ``eventlet.event.Event``, as nameko's reply consumer hands an RPC
  reply to its caller: a timer added from a read's callback.

Each hub runs in a process of its own (a hub is chosen once per process),
``--runs`` times, alternating; prints the CPU time per round trip (min and median
of the runs) for

* ``epolls``: eventlet's own default hub, the mesh's hub before asyncio;
* ``asyncio``: eventlet's asyncio hub as eventlet ships it;
* ``mesh.asyncio_hub``: the mesh's hub (``mesh.asyncio_hub``): the asyncio hub
  with its timers run as loop callbacks and without a registration with the loop
  per wait.

CPU time, not wall time: less disturbed by other processes on a busy machine.
"""
import argparse
import os
import statistics
import subprocess
import sys

from bench.harness import ROOT
from mesh.hub import HUB_VARIABLE, MESH_HUB

HUBS = ["epolls", "asyncio", MESH_HUB]

# runs in a fresh process per hub: the hub is picked from EVENTLET_HUB at the
# first use of eventlet, and monkey_patch makes the socket pair green
ROUND_TRIPS = """
import sys, time
import eventlet
eventlet.monkey_patch()
import socket
from eventlet.event import Event
from mesh.hub import hub_name

count = int(sys.argv[1])


def cpu_per_round_trip(timeout, relay):
    ours, theirs = socket.socketpair()
    ours.settimeout(timeout)
    theirs.settimeout(timeout)
    reply = {}

    def echo():
        for _ in range(count):
            theirs.sendall(theirs.recv(16))

    def hand_on():
        for _ in range(count):
            data = ours.recv(16)
            reply["event"].send(data)

    eventlet.spawn(echo)
    if relay:
        eventlet.spawn(hand_on)
    eventlet.sleep(0)
    started = time.process_time()
    for _ in range(count):
        if relay:
            reply["event"] = Event()
            ours.sendall(b"x")
            assert reply["event"].wait() == b"x"
        else:
            ours.sendall(b"x")
            assert ours.recv(16) == b"x"
    spent = time.process_time() - started
    ours.close()
    theirs.close()
    return spent / count * 1e6


print(hub_name(), cpu_per_round_trip(None, False), cpu_per_round_trip(5, False),
      cpu_per_round_trip(None, True))
"""

WAYS = ["plain", "timeout", "relay"]


def cpu_per_round_trip(hub, round_trips):
    """``(reported hub name, [CPU microseconds per round trip, each of WAYS])``
    in a new process."""
    env = dict(os.environ, **{HUB_VARIABLE: hub})
    done = subprocess.run([sys.executable, "-c", ROUND_TRIPS, str(round_trips)], cwd=ROOT,
                          env=env, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        sys.exit("the {} hub failed:\n{}".format(hub, done.stderr))
    reported, *microseconds = done.stdout.split()
    return reported, [float(figure) for figure in microseconds]


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--round-trips", type=int, default=20000)
    parser.add_argument("--runs", type=int, default=5)
    args = parser.parse_args()
    figures = {hub: {way: [] for way in WAYS} for hub in HUBS}
    reported = {}
    for _ in range(args.runs):
        for hub in HUBS:  # alternating: a busy moment hits every hub alike
            reported[hub], microseconds = cpu_per_round_trip(hub, args.round_trips)
            for way, figure in zip(WAYS, microseconds):
                figures[hub][way].append(figure)
    print("socket round trip between two greenthreads (2 waits), CPU us, min / median "
          "of {} runs of {}; Python {}".format(args.runs, args.round_trips,
                                               sys.version.split()[0]))
    print("{:<20} {:>9}".format("EVENTLET_HUB", "reported")
          + "".join(" {:>15}".format(way) for way in WAYS))
    for hub in HUBS:
        print("{:<20} {:>9}".format(hub, reported[hub]) + "".join(
            " {:>15}".format("{:.1f} / {:.1f}".format(
                min(figures[hub][way]), statistics.median(figures[hub][way])))
            for way in WAYS))


if __name__ == "__main__":
    main()
