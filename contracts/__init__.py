"""What crosses a process boundary, and nothing else: the mesh's contract as code.

Every process (services, the stream aggregator, the tools, the benchmarks, the
tests) takes these names from here, so a name changes in one place. Nothing in
this package imports nameko, nor any other package of the project: it is the
bottom layer, which the aggregator and plain clients use too.

- ``services``: service names, and which ones ``/health`` requires.
- ``headers``: the context data that travels with every RPC call and event.
- ``errors``: every error code with its HTTP status.
- ``events``: event names and their payloads (``bill_created``, change events).
- ``topics``: Kafka topic names, and creating them.
- ``cache_tags``: the tags read caches are evicted by.
- ``wire``: money and times as text (HTTP answers, events, Kafka records).
"""
