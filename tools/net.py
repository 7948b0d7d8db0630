"""Ports and health: what the launcher, the tests and the benchmarks all wait on."""
import socket
import time
import urllib.error
import urllib.request


def free_port():
    """A TCP port on 127.0.0.1 nobody listens on right now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def answers(host, port, timeout=1.0):
    """Whether something accepts TCP connections at ``host:port``."""
    try:
        socket.create_connection((host, port), timeout=timeout).close()
        return True
    except OSError:
        return False


def split_address(address, default_host="127.0.0.1"):
    """``"127.0.0.1:9092"`` -> ``("127.0.0.1", 9092)`` (the first one of a
    comma-separated list, as Kafka's bootstrap servers are given)."""
    host, _, port = address.split(",")[0].strip().rpartition(":")
    return host or default_host, int(port)


def http_status(url, timeout=3):
    """``(status, body)`` of ``GET url``; ``(None, reason)`` without an answer."""
    try:
        with urllib.request.urlopen(url, timeout=timeout) as response:
            return response.status, response.read().decode(errors="replace")
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read().decode(errors="replace")
    except (OSError, ValueError) as exc:
        return None, str(exc)


def wait_until_ok(url, seconds, give_up=lambda: False, interval=0.2, ready=lambda body: True,
                  times=1):
    """Poll ``GET url`` until it answers 200 with a body ``ready(body)`` accepts
    ``times`` polls in a row, ``seconds`` pass or ``give_up()`` is true: ``(True,
    body)``, or ``(False, the last answer or error)``. The launcher and the
    benchmarks wait on ``<gateway>/health`` with it."""
    deadline = time.time() + seconds
    last = "no answer yet"
    in_a_row = 0
    while time.time() < deadline and not give_up():
        status, body = http_status(url)
        in_a_row = in_a_row + 1 if status == 200 and ready(body) else 0
        if in_a_row >= times:
            return True, body
        last = body
        time.sleep(interval)
    return False, last
