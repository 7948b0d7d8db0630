"""``python -m tools.topology``: declare every declared handler's durable queue
on the broker of ``AMQP_URI`` (``common.topology``), then exit. ``make run``
does it before it starts the mesh; compose's ``topology`` service runs this.

    AMQP_URI=pyamqp://guest:guest@rabbitmq:5672/ python -m tools.topology
"""
import sys

from common.config import load_config
from common.topology import declare_topology, queue_type_of


def main():
    config = load_config()
    uri = config["AMQP_URI"]
    try:
        names = declare_topology(uri, queue_type=queue_type_of(config))
    except OSError as exc:
        sys.exit("topology: RabbitMQ does not answer at {} ({}): start it (make rabbitmq)"
                 .format(uri, exc))
    print("topology: {} handler queue(s) declared: {}".format(len(names), ", ".join(names)),
          flush=True)


if __name__ == "__main__":
    main()
