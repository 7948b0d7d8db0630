"""Billing analytics: a quixstreams application (Kafka Streams' model in Python).

It reads ``bill_created`` and ``bill_cancelled`` events from ``billing.bills`` and keeps three running
aggregates, each written to its own topic (see ``contracts/topics.py``):
revenue and bill count per customer, units and revenue per product, and revenue
per tumbling window of ``STREAMS_WINDOW_SECONDS``.

Delivery is at least once, and a rebuild gives every bill again, so each
event is settled first against what was counted of its bill (each bill's
creation and cancellation count once; a cancellation waits for its creation);
state lives in quixstreams stores backed by changelog topics, so counts and the
bills seen survive a restart. Run it with ``python -m streams``.

- ``aggregate.py``: the arithmetic, as pure functions (Decimal money, kept as text).
- ``app.py``: the wiring (settings, Tansu work-arounds, the dataframe).
- ``__main__.py``: ``python -m streams``.
"""
