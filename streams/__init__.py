"""Billing analytics: a quixstreams application (Kafka Streams' model in Python).

It reads ``bill_created`` events from ``billing.bills`` and keeps three running
aggregates, each written to its own topic (see ``streams/topics.py``):
revenue and bill count per customer, units and revenue per product, and revenue
per tumbling window of ``STREAMS_WINDOW_SECONDS``.

Delivery is at least once, so every stage that keeps state first drops events it
has already counted (by ``event_id``); state lives in quixstreams stores backed
by changelog topics, so counts survive a restart. Run it with ``python -m streams``.

- ``topics.py``: topic names and ``ensure_topics()``, shared with producers and readers.
- ``aggregate.py``: the arithmetic, as pure functions (Decimal money, kept as text).
- ``app.py``: the wiring (settings, Tansu work-arounds, the dataframe).
"""
