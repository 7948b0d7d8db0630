"""Shared by every test. ``tests/unit`` needs no broker and no database server
(``make test-unit``); ``tests/integration`` runs against the real RabbitMQ,
PostgreSQL and a local Kafka broker (``make test`` starts what is missing).

Run with ``make test`` or ``nameko test``; plain ``pytest`` works too: eventlet
is patched here before anything else.
"""
import eventlet

eventlet.monkey_patch()  # before sockets and threads exist
