"""``make bench-hub``: what one socket wait costs on each eventlet hub.

    .venv/bin/python -m bench.hub_bench [--round-trips 20000] [--runs 5]

Two greenthreads of one process send one byte back and forth over a socket pair:
every round trip is two socket waits, each a trip through the hub. Each hub runs
in a process of its own (a hub is chosen once per process), ``--runs`` times,
alternating; prints the CPU time per round trip (min and median of the runs) for

* ``epolls``: eventlet's own default hub, the mesh's hub before asyncio;
* ``asyncio``: eventlet's asyncio hub as eventlet ships it;
* ``mesh.asyncio_hub``: the mesh's hub (``mesh.asyncio_hub``), the asyncio hub
  without its wake-up after every I/O event and without a registration with the
  loop per wait.

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
from mesh.hub import hub_name

count = int(sys.argv[1])
ours, theirs = socket.socketpair()

def echo():
    for _ in range(count):
        theirs.sendall(theirs.recv(16))

eventlet.spawn(echo)
eventlet.sleep(0)
started = time.process_time()
for _ in range(count):
    ours.sendall(b"x")
    assert ours.recv(16) == b"x"
print(hub_name(), (time.process_time() - started) / count * 1e6)
"""


def cpu_per_round_trip(hub, round_trips):
    """``(reported hub name, CPU microseconds per round trip)`` in a new process."""
    env = dict(os.environ, **{HUB_VARIABLE: hub})
    done = subprocess.run([sys.executable, "-c", ROUND_TRIPS, str(round_trips)], cwd=ROOT,
                          env=env, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        sys.exit("the {} hub failed:\n{}".format(hub, done.stderr))
    reported, microseconds = done.stdout.split()
    return reported, float(microseconds)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--round-trips", type=int, default=20000)
    parser.add_argument("--runs", type=int, default=5)
    args = parser.parse_args()
    figures = {hub: [] for hub in HUBS}
    reported = {}
    for _ in range(args.runs):
        for hub in HUBS:  # alternating: a busy moment hits every hub alike
            reported[hub], microseconds = cpu_per_round_trip(hub, args.round_trips)
            figures[hub].append(microseconds)
    print("socket round trip between two greenthreads (2 waits), CPU us, {} runs of {}; "
          "Python {}".format(args.runs, args.round_trips, sys.version.split()[0]))
    print("{:<28} {:>9} {:>8} {:>8}".format("EVENTLET_HUB", "reported", "min", "median"))
    for hub in HUBS:
        print("{:<28} {:>9} {:>8.1f} {:>8.1f}".format(
            hub, reported[hub], min(figures[hub]), statistics.median(figures[hub])))


if __name__ == "__main__":
    main()
