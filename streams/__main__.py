"""``python -m streams``: run the billing aggregator until SIGTERM or Ctrl+C.

Settings come from config.yaml (environment variables override), e.g.
``KAFKA_BOOTSTRAP_SERVERS=127.0.0.1:19092 python -m streams``.
"""
import logging
import sys

from kafka.errors import KafkaTimeoutError

from common.config import load_config
from streams.app import CONSUMER_GROUP, Settings, build_app
from contracts.topics import AGGREGATES, BILLS_TOPIC

log = logging.getLogger("streams")


def main():
    config = load_config()
    level = config.get("LOGGING", {}).get("root", {}).get("level", "INFO")
    logging.basicConfig(stream=sys.stderr, level=level,
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    logging.getLogger("kafka").setLevel(logging.WARNING)  # kafka-python: a line per connection
    settings = Settings.from_config(config)
    try:
        app = build_app(settings)
    except KafkaTimeoutError as exc:
        log.error("no Kafka broker answers at %s (%s): start one (`make run` starts "
                  "Tansu) or set KAFKA_BOOTSTRAP_SERVERS", settings.bootstrap, exc)
        return 1
    log.info("billing analytics: broker %s%s, group %s, reading %s, writing %s; "
             "revenue windows of %g s; state in %s", settings.bootstrap,
             " (Tansu work-arounds on)" if settings.tansu else "", CONSUMER_GROUP,
             BILLS_TOPIC, ", ".join(AGGREGATES), settings.window_seconds,
             settings.state_dir)
    app.run()  # quixstreams stops cleanly on SIGTERM and SIGINT
    log.info("billing analytics stopped")


if __name__ == "__main__":
    sys.exit(main())
