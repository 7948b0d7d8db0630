"""``python -m streams``: run the billing aggregator until SIGTERM or Ctrl+C.

Settings come from config.yaml (environment variables override), e.g.
``KAFKA_BOOTSTRAP_SERVERS=127.0.0.1:19092 python -m streams``.

The aggregator itself runs in a child process (``python -m streams --worker``),
which this one starts again whenever it dies of anything but a stop asked for
(at once when it asks to be: a rebalance on Tansu, ``streams.app``), and on
SIGHUP, which ``make run`` sends when it started the local Tansu broker again:
after such a restart (the broker empty) quixstreams' librdkafka client either
took its process down (SIGSEGV) or hung for good, and the Kafka side must come
back by itself. The new one starts from the broker's state (on
Tansu, empty: ``streams.app``), and the rebuilder gives billing's record again
(``services.rebuilder``). SIGTERM and SIGINT are passed on.
"""
import logging
import signal
import subprocess
import sys
import threading
import time

from kafka.errors import KafkaTimeoutError

from common.config import load_config
from streams.app import (CONSUMER_GROUP, RESTART_EXIT_CODE, InvalidStoreChangelogOffset,
                         Settings, build_app, claim_state_dir)
from contracts.topics import AGGREGATES, BILLS_TOPIC

log = logging.getLogger("streams")

RESTART_DELAY_S = 2.0
STOP_WAIT_S = 5.0
WORKER_FLAG = "--worker"


def configure_logging(config):
    level = config.get("LOGGING", {}).get("root", {}).get("level", "INFO")
    logging.basicConfig(stream=sys.stderr, level=level,
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    logging.getLogger("kafka").setLevel(logging.WARNING)  # kafka-python: a line per connection


def run_worker(config):
    settings = Settings.from_config(config)
    state_dir = claim_state_dir(settings.state_dir)
    try:
        app = build_app(settings, state_dir)
    except KafkaTimeoutError as exc:
        log.error("no Kafka broker answers at %s (%s): start one (`make run` starts "
                  "Tansu) or set KAFKA_BOOTSTRAP_SERVERS", settings.bootstrap, exc)
        return 1
    log.info("billing analytics: broker %s%s, group %s, reading %s, writing %s; "
             "revenue windows of %g s; state in %s", settings.bootstrap,
             " (Tansu work-arounds on)" if settings.tansu else "", CONSUMER_GROUP,
             BILLS_TOPIC, ", ".join(AGGREGATES), settings.window_seconds,
             state_dir)
    try:
        app.run()  # quixstreams stops cleanly on SIGTERM and SIGINT
    except InvalidStoreChangelogOffset:
        if not settings.tansu:
            raise
        log.warning("a rebalance gave this instance partitions over local state that Tansu "
                    "calls newer than its changelog (Tansu work-around 4 in streams/app.py): "
                    "starting again on a cleared state")
        return RESTART_EXIT_CODE
    log.info("billing analytics stopped")
    return 0


def stop_child(child):
    child.terminate()
    try:
        child.wait(timeout=STOP_WAIT_S)
    except subprocess.TimeoutExpired:
        child.kill()


def supervise():
    """Run the worker; start it again when it dies unasked, or on SIGHUP,
    until asked to stop."""
    stopping, restarting, child = [], [], None

    def pass_on(signum, frame):
        stopping.append(signum)
        if child is not None and child.poll() is None:
            child.send_signal(signum)

    def start_again(signum, frame):
        if child is not None and child.poll() is None:
            log.warning("SIGHUP: starting the aggregator again")
            restarting.append(signum)
            threading.Thread(target=stop_child, args=(child,), daemon=True).start()

    signal.signal(signal.SIGTERM, pass_on)
    signal.signal(signal.SIGINT, pass_on)
    signal.signal(signal.SIGHUP, start_again)
    while True:
        child = subprocess.Popen([sys.executable, "-m", "streams", WORKER_FLAG])
        code = child.wait()
        if stopping:
            return code
        if restarting:  # stopped for SIGHUP, cleanly or not
            restarting.clear()
            continue
        if code == 0:
            return code
        if code == RESTART_EXIT_CODE:
            continue
        how = "signal {}".format(signal.Signals(-code).name) if code < 0 else "exit code {}".format(code)
        log.error("the aggregator stopped (%s); starting it again in %g s", how,
                  RESTART_DELAY_S)
        time.sleep(RESTART_DELAY_S)
        if stopping:
            return code


def main():
    config = load_config()
    configure_logging(config)
    if WORKER_FLAG in sys.argv[1:]:
        return run_worker(config)
    return supervise()


if __name__ == "__main__":
    sys.exit(main())
