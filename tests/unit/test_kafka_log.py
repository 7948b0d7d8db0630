"""``mesh.kafka.ThreadSafeLog``: confluent-kafka's log lines from a native thread
never take the (green) logging locks there; they are logged from the hub's
thread."""
import logging

import eventlet.patcher

from mesh.kafka import ThreadSafeLog

native_threading = eventlet.patcher.original("threading")


class Lines:
    def __init__(self):
        self.lines = []

    def log(self, level, msg, *args):
        self.lines.append((level, msg % args, native_threading.get_ident()))


def test_lines_from_a_native_thread_wait_for_the_hubs_thread():
    logger = Lines()
    kafka_log = ThreadSafeLog(logger)
    here = native_threading.get_ident()
    kafka_log.log(logging.INFO, "%s [%s] %s", "FETCH", "rdkafka#consumer-1", "from the hub")
    assert logger.lines == [(logging.INFO, "FETCH [rdkafka#consumer-1] from the hub", here)]

    thread = native_threading.Thread(target=kafka_log.log, args=(
        logging.ERROR, "%s [%s] %s", "FAIL", "rdkafka#consumer-1", "from librdkafka's call"))
    thread.start()
    thread.join()
    assert len(logger.lines) == 1  # nothing logged in the native thread
    kafka_log.flush()
    assert logger.lines[1] == (logging.ERROR, "FAIL [rdkafka#consumer-1] from librdkafka's call",
                               here)
    kafka_log.flush()  # logged once
    assert len(logger.lines) == 2
