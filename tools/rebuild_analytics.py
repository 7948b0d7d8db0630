"""``make rebuild-analytics``: rebuild the analytics from billing's record now,
and show how far the rebuild has got until it is done.

    python -m tools.rebuild_analytics            # what `make rebuild-analytics` runs
    python -m tools.rebuild_analytics --no-wait  # ask, and return at once

The rebuilder (``services.rebuilder``) also rebuilds by itself when the
analytics stop equalling billing; this is for an operator who wants one now
(after restoring Kafka from a backup, say). It prints a line whenever the
progress moves:

    rebuilding: 2000 of 5120 events given again (asked for (rebuilder.rebuild))
    done: 5120 events given again in 3.4 s
"""
import argparse
import asyncio
import datetime
import sys

import mesh.aio
from contracts.errors import MeshError

POLL_S = 0.5


def progress_line(status):
    if status["state"] == "done":
        took = (datetime.datetime.fromisoformat(status["finished_at"])
                - datetime.datetime.fromisoformat(status["started_at"])).total_seconds()
        return "done: {} events given again in {:.1f} s".format(status["events_given"], took)
    return "rebuilding: {} of {} events given again ({})".format(
        status["events_given"], status["events_total"], status["reason"])


async def rebuild(config=None, wait=True, out=sys.stdout):
    async with mesh.aio.connect(config) as client:
        asked = await client.rebuilder.rebuild()
        before = (asked["rebuild"] or {}).get("started_at")
        print("asked the rebuilder for a rebuild; it starts within a few seconds", file=out,
              flush=True)
        last = None
        while wait:
            status = await client.rebuilder.get_rebuild()
            if status is not None and status["started_at"] != before \
                    and status["state"] in ("rebuilding", "done"):
                line = progress_line(status)
                if line != last:
                    print(line, file=out, flush=True)
                    last = line
                if status["state"] == "done":
                    return status
            await asyncio.sleep(POLL_S)
    return None


def main(argv=None):
    parser = argparse.ArgumentParser(description="Rebuild the analytics from billing's record.")
    parser.add_argument("--no-wait", action="store_true", help="ask, and return at once")
    args = parser.parse_args(argv)
    try:
        asyncio.run(rebuild(wait=not args.no_wait))
    except MeshError as exc:
        sys.exit("the rebuilder does not answer ({}): is `make run` running?".format(exc))


if __name__ == "__main__":
    main()
