"""``python -m tools.probe``: exit 0 if this container's nameko process
consumes its RabbitMQ queues now, 1 (saying why) if not: the readiness probe of
the Kubernetes manifests (``deploy/k8s``), run inside the container.
``--worker MODULE``: the aggregator's instead: its worker (``python -m MODULE
--worker``, which its supervisor starts again when it dies) runs.

It reads ``mesh_amqp_consuming`` (``mesh.metrics``) from the process's own
metrics port (``METRICS_PORT``, on 127.0.0.1): 1 once the process consumes
its queues, 0 while it (re)connects to the broker. A process that does not
answer at all fails too. Standard library only: it runs every few seconds.

    METRICS_PORT=9100 python -m tools.probe
"""
import os
import re
import sys
import urllib.request

from tools.processes import command_line, runs_module

CONSUMING = re.compile(r'^mesh_amqp_consuming\{service="([^"]+)"\} (\S+)$', re.MULTILINE)


def consuming(metrics_text):
    """``{service: consuming?}`` from a metrics page."""
    return {service: float(value) == 1.0 for service, value in CONSUMING.findall(metrics_text)}


def workers_of(module, proc="/proc"):
    """pids of the processes running ``python -m <module> --worker``."""
    found = []
    for pid in filter(str.isdigit, os.listdir(proc)):
        argv = command_line(pid, proc)
        if "--worker" in argv and runs_module(argv, module):
            found.append(int(pid))
    return found


def main(argv=None):
    argv = sys.argv[1:] if argv is None else argv
    if argv[:1] == ["--worker"] and len(argv) == 2:
        workers = workers_of(argv[1])
        if not workers:
            sys.exit("probe: no `python -m {} --worker` runs".format(argv[1]))
        print("probe: worker {} runs".format(workers[0]))
        return
    port = os.environ.get("METRICS_PORT", "0")
    if port in ("", "0"):
        sys.exit("probe: METRICS_PORT is not set: the process serves no metrics to read")
    try:
        with urllib.request.urlopen("http://127.0.0.1:{}/metrics".format(port),
                                    timeout=3) as answer:
            text = answer.read().decode()
    except OSError as exc:
        sys.exit("probe: no metrics at 127.0.0.1:{} ({})".format(port, exc))
    found = consuming(text)
    if not found or not all(found.values()):
        sys.exit("probe: not consuming its queues: {}".format(found or "no consumer yet"))
    print("probe: consuming ({})".format(", ".join(sorted(found))))


if __name__ == "__main__":
    main()
