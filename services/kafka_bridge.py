"""kafka_bridge: billing's ``bill_created`` events, forwarded to the Kafka topic
``billing.bills`` (key: the customer id; value: the event's JSON, as
``contracts.events`` describes it).

The AMQP message is settled only after Kafka acknowledged the record. While
Kafka is away the handler backs off, and after ``KAFKA_RETRY_SECONDS`` gives the
message back to RabbitMQ (``requeue_on_error``): events wait in RabbitMQ, not in
memory, and bill creation never waits on Kafka. Delivery is at least once; the
aggregator deduplicates by ``event_id``.

    nameko run --config config.yaml services.kafka_bridge
"""
import logging

import mesh.service
from contracts.events import BILL_CREATED
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
        (Its queue is declared by billing's outbox too: ``contracts.events.BRIDGE_QUEUE``.)

            bill_created {"event_id": "...", "bill": {"customer_id": 1, ...}}
            -> billing.bills key "1"
        """
        metadata = self.kafka.send(BILLS_TOPIC, key=str(event["bill"]["customer_id"]),
                                   value=event)
        log.info("bill %s (event %s) -> %s partition %s offset %s", event["bill"]["id"],
                 event["event_id"], BILLS_TOPIC, metadata.partition, metadata.offset)
