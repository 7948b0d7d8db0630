"""RPC calls/s of ``mesh.aio`` (asyncio, aio-pika) next to nameko's own
``ClusterRpcProxy``, against ``customers.get_customer(1)``:

    .venv/bin/python -m bench.aio_client_bench              # 5 s per figure
    .venv/bin/python -m bench.aio_client_bench --seconds 1  # a quick look

Starts the mesh as ``make run`` does, in a vhost, ports and folder of its own
(``bench.harness.BenchMesh``, with a Tansu broker of its own), then measures,
each for ``--seconds``:

1. ``mesh.aio``, one call at a time (each awaited before the next);
2. ``mesh.aio``, 100 calls in flight (100 tasks, each calling in turn);
3. ``ClusterRpcProxy``, one at a time, and 100 in flight through ``call_async``
   (``bench.mesh_bench.rpc_calls``: the figures ``make bench`` reports).

Every answer is checked (customer 1). Prints a table (with the CPU this
process spent per call: the client's own cost) and one JSON line.
"""
import argparse
import asyncio
import json
import shutil
import sys
import tempfile
import time

import mesh.aio
from bench.harness import BenchMesh, start_tansu
from bench.mesh_bench import rpc_calls

IN_FLIGHT = 100


async def aio_calls(amqp_uri, seconds, in_flight):
    """Calls/s of ``customers.get_customer(1)`` through ``mesh.aio`` with
    ``in_flight`` calls outstanding at any time."""
    async with mesh.aio.connect(amqp_uri, timeout=30) as client:
        get_customer = client.customers.get_customer
        for _ in range(50):  # warm: connection, consumer count, the service's workers
            await get_customer(1)
        done = 0
        started = time.perf_counter()
        stop_at = started + seconds

        async def caller():
            nonlocal done
            while time.perf_counter() < stop_at:
                if (await get_customer(1))["id"] != 1:
                    sys.exit("customers.get_customer(1) answered another customer")
                done += 1

        await asyncio.gather(*(caller() for _ in range(in_flight)))
        return done / (time.perf_counter() - started)


def with_cpu(measure_rate, seconds):
    """``(calls/s, this process's CPU µs per call)``: the client's own cost,
    connecting and warming included (so a little over the loop's)."""
    cpu, wall = time.process_time(), time.perf_counter()
    rate = measure_rate()
    cpu, wall = time.process_time() - cpu, time.perf_counter() - wall
    return rate, cpu / max(rate * min(seconds, wall), 1) * 1e6


def measure(seconds):
    folder = tempfile.mkdtemp(prefix="billing-mesh-aio-bench-")
    bootstrap, tansu = start_tansu(folder)
    try:
        with BenchMesh(folder, bootstrap) as bench_mesh:
            uri = bench_mesh.vhost.amqp_uri
            figures = {
                "mesh.aio, 1 at a time": with_cpu(
                    lambda: asyncio.run(aio_calls(uri, seconds, 1)), seconds),
                "mesh.aio, 100 in flight": with_cpu(
                    lambda: asyncio.run(aio_calls(uri, seconds, IN_FLIGHT)), seconds),
                "ClusterRpcProxy, 1 at a time": with_cpu(
                    lambda: rpc_calls(uri, seconds, 1), seconds),
                "ClusterRpcProxy, 100 in flight (call_async)": with_cpu(
                    lambda: rpc_calls(uri, seconds, IN_FLIGHT), seconds),
            }
    finally:
        tansu.kill()
    shutil.rmtree(folder, ignore_errors=True)
    return figures


def main(argv=None):
    parser = argparse.ArgumentParser(prog="python -m bench.aio_client_bench",
                                     description=__doc__.split("\n\n")[0])
    parser.add_argument("--seconds", type=float, default=5.0, help="seconds per figure")
    args = parser.parse_args(argv)
    figures = measure(args.seconds)
    print("{:<46} {:>10} {:>22}".format("customers.get_customer(1)", "calls/s",
                                        "client CPU µs/call"))
    for name, (rate, cpu_us) in figures.items():
        print("{:<46} {:>10,.0f} {:>22,.0f}".format(name, rate, cpu_us))
    print("AIO-BENCH-JSON " + json.dumps({name: {"calls_per_s": round(rate, 1),
                                                 "client_cpu_us_per_call": round(cpu_us)}
                                          for name, (rate, cpu_us) in figures.items()}))


if __name__ == "__main__":
    main()
