"""Billing analytics: a quixstreams application (Kafka Streams' model in Python).

It reads ``bill_created`` events from ``billing.bills`` and keeps three running
aggregates, each written to its own topic (see ``contracts/topics.py``):
revenue and bill count per customer, units and revenue per product, and revenue
per tumbling window of ``STREAMS_WINDOW_SECONDS``.

Delivery is at least once, so events already counted (same ``event_id``) are
dropped first (an id is remembered ``STREAMS_DEDUP_RETENTION_S`` of event time);
state lives in quixstreams stores backed by changelog topics, so counts and the
dedup memory survive a restart. Run it with ``python -m streams``.

- ``aggregate.py``: the arithmetic, as pure functions (Decimal money, kept as text).
- ``app.py``: the wiring (settings, Tansu work-arounds, the dataframe).
- ``__main__.py``: ``python -m streams``.
"""
