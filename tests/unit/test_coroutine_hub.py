"""A coroutine entrypoint on a hub other than asyncio's fails at once with
what to do (it once spawned itself again and again, and the process hung)."""
import os
import subprocess
import sys

from common.config import ROOT

SNIPPET = """
import eventlet
eventlet.monkey_patch()
from mesh.coroutines import synchronous_worker

async def get_full_bill():
    return 1

try:
    eventlet.spawn(synchronous_worker(get_full_bill)).wait()
except RuntimeError as exc:
    print("refused:", exc)
"""


def test_a_coroutine_on_another_hub_is_refused_with_what_to_do():
    run = subprocess.run([sys.executable, "-c", SNIPPET], cwd=ROOT, capture_output=True,
                         text=True, timeout=60, env=dict(os.environ, EVENTLET_HUB="epolls"))
    assert "refused: get_full_bill is a coroutine: it needs eventlet's asyncio hub" in run.stdout, \
        run.stdout + run.stderr[-2000:]
