"""Processes as /proc shows them (standard library only: the readiness probe,
``tools.probe``, imports it inside the image)."""
import os


def command_line(pid, proc="/proc"):
    """``pid``'s argv (``[]`` once it is gone)."""
    try:
        with open(os.path.join(proc, str(pid), "cmdline"), "rb") as handle:
            return handle.read().decode(errors="replace").rstrip("\0").split("\0")
    except OSError:
        return []


def runs_module(argv, module):
    """``argv`` runs ``python -m <module>`` (``module`` exactly)."""
    return any(argv[i:i + 2] == ["-m", module] for i in range(len(argv)))
