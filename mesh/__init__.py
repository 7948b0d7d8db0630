"""The framework layer: nameko extensions only, one module per subsystem.

- ``amqp``: the fast-reconnect consumer, the transient publisher.
- ``rpc``: ``@rpc`` with deadlines; ``proxy``: ``MeshRpcProxy``, the Feign client.
- ``service``: ``MeshService``, the base of every service (``ping``, ``describe``).
- ``events``: ``@event_handler``, ``@evicts_on``, ``ChangeEvents``.
- ``http``: the JSON ``@http`` entrypoint; ``errors``: exceptions to HTTP statuses.
- ``db``: ``MeshDatabase``; ``outbox``: ``Outbox``; ``cache``: ``ReadCache``.
- ``kafka``: ``KafkaProducer``, ``TopicTables``; ``registry``: what the broker
  knows; ``tracing``: request ids in every log line; ``pending``: ids for a timer.
- ``metrics``: ``Metrics`` and the figures Prometheus scrapes (``METRICS_PORT``).

It imports ``contracts`` and ``common``, never ``services`` or ``tools``. Where
it overrides a private API of nameko, kombu, nameko-sqlalchemy or eventlet,
docs/upstream-internals.md says so and tests/unit/test_upstream.py checks it.
"""
