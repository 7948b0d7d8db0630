"""The HTTP contract under a fuzzer: schemathesis, driven by the gateway's own
``/openapi.json``, against the whole mesh over the real broker: every phase
(examples, coverage, fuzzing, stateful links such as create then read), every
check that fits, at a fixed seed. Zero failures.

``make fuzz`` runs the same longer with a new seed, and prints it;
``FUZZ_SEED`` and ``FUZZ_EXAMPLES`` set them here.

The endless streams (``/analytics/stream``, ``/events/stream``) are left out by
their mark in the document, ``x-endless-stream: true`` (``mesh.openapi``), not
by their paths: ``--exclude-by``, below. Every other operation runs every
check, ``positive_data_acceptance`` included: what the document allows is
taken (a product listed twice in a bill, any address its pattern matches).
"""
import os
import subprocess
import sys
import time

import pytest

from contracts.scopes import SCOPES
from helpers import CORE_SERVICES

SEED = int(os.environ.get("FUZZ_SEED", "20261201"))
EXAMPLES = int(os.environ.get("FUZZ_EXAMPLES", "25"))
# seconds the fuzzer may run (make fuzz gives it more)
BUDGET = int(os.environ.get("FUZZ_TIMEOUT", "540"))
CONFIG = os.path.join(os.path.dirname(os.path.abspath(__file__)), "schemathesis.toml")
# schemathesis's filter: a JSON pointer into each operation, and the value
ENDLESS_STREAMS = "/x-endless-stream == true"


def fuzz_command(url, seed, examples, folder, token=None,
                 phases="examples,coverage,fuzzing,stateful", exclude_checks=None):
    command = [
        os.path.join(os.path.dirname(sys.executable), "schemathesis"), "--config-file", CONFIG,
        "run", url + "/openapi.json", "--phases", phases,
        "--exclude-by", ENDLESS_STREAMS,
        "--seed", str(seed), "--max-examples", str(examples),
        "--request-timeout", "10", "--workers", "1", "--no-color",
        "--generation-database", "none", "--continue-on-failure",
        "--report", "junit", "--report-dir", str(folder),
    ]
    if token is not None:
        command += ["--header", "Authorization: Bearer " + token]
    if exclude_checks:
        command += ["--exclude-checks", exclude_checks]
    return command


def fuzz(command):
    run = subprocess.run(command, capture_output=True, text=True, timeout=BUDGET)
    print(run.stdout[-20000:])
    print(run.stderr[-5000:], file=sys.stderr)
    assert run.returncode == 0, "schemathesis found failures (seed {}):\n{}".format(
        SEED, run.stdout[-8000:])


@pytest.mark.timeout(BUDGET + 60)
def test_the_fuzzer_finds_nothing(issuer, start_mesh, mesh_config, kafka, tmp_path):
    """The whole mesh but the aggregator (analytics then answers zeros), checking
    tokens: the fuzzer's carries every scope (its ``ignored_auth`` check also
    sends each request without it, and expects the 401 the document promises);
    then a short run without any token, where everything the document guards
    must be refused as documented (the documents and loopback routes answer)."""
    mesh_config["KAFKA_BOOTSTRAP_SERVERS"] = kafka.bootstrap
    mesh = start_mesh(mesh_config, *CORE_SERVICES, "kafka_bridge", "analytics")
    token = issuer.token(scope=" ".join(SCOPES), exp=int(time.time()) + 3600)
    fuzz(fuzz_command(mesh.url, SEED, EXAMPLES, tmp_path / "with-token", token=token))
    # valid data refused with 401 is the point here, not a failure
    fuzz(fuzz_command(mesh.url, SEED, 5, tmp_path / "without-token", phases="examples,coverage",
                      exclude_checks="positive_data_acceptance"))
