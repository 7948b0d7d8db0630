"""kafka_bridge: billing's ``bill_created`` and ``bill_cancelled`` events,
forwarded to the Kafka topic ``billing.bills`` (key: the customer id; value: the
event's JSON, as ``contracts.events`` describes it).

Both types go to the one topic with the same key so that a bill's cancellation
sits in the same partition as its creation and the aggregator sees one stream
per customer; the event's ``type`` tells them apart.

The AMQP message is settled only after Kafka acknowledged the record. While
Kafka is away the handler backs off, and after ``KAFKA_RETRY_SECONDS`` gives the
message back to RabbitMQ (``requeue_on_error``): events wait in RabbitMQ, not in
memory, and bill creation or cancellation never waits on Kafka. Delivery is at
least once; the aggregator deduplicates by ``event_id``.

    nameko run --config config.yaml services.kafka_bridge
"""
import logging

import mesh.service
from contracts.events import BILL_CANCELLED, BILL_CREATED
from contracts.services import BILLING, KAFKA_BRIDGE
from contracts.topics import BILLS_TOPIC
from mesh.events import event_handler
from mesh.kafka import KafkaProducer, create_topics

log = logging.getLogger(__name__)


class KafkaBridgeService(mesh.service.MeshService):
    name = KAFKA_BRIDGE

    kafka = KafkaProducer(prepare=create_topics)

    @event_handler(BILLING, BILL_CREATED, requeue_on_error=True)
    def forward_bill_created(self, event):
        """Produce the event to ``billing.bills``; raising gives it back to RabbitMQ.
        (Its queue is declared before anything starts: ``contracts.services``.)

            bill_created {"event_id": "...", "bill": {"customer_id": 1, ...}}
            -> billing.bills key "1"
        """
        self._forward(event)

    @event_handler(BILLING, BILL_CANCELLED, requeue_on_error=True)
    def forward_bill_cancelled(self, event):
        """The same for a cancellation: same topic, same key, so the aggregator
        subtracts it from the customer the creation was added to.

            bill_cancelled {"event_id": "...", "bill": {"customer_id": 1, ..., "status": "cancelled"}}
            -> billing.bills key "1"
        """
        self._forward(event)

    def _forward(self, event):
        metadata = self.kafka.send(BILLS_TOPIC, key=str(event["bill"]["customer_id"]),
                                   value=event)
        log.info("%s of bill %s (event %s) -> %s partition %s offset %s", event["type"],
                 event["bill"]["id"], event["event_id"], BILLS_TOPIC, metadata.partition,
                 metadata.offset)
