"""Service names: the routing keys of the mesh (``rpc-<name>`` queues, event
exchanges ``<name>.events``) and the process names of the Procfile."""

CUSTOMERS = "customers"
INVENTORY = "inventory"
BILLING = "billing"
GATEWAY = "gateway"
KAFKA_BRIDGE = "kafka_bridge"
ANALYTICS = "analytics"
STREAMS = "streams"  # the aggregator: a Kafka consumer, not a nameko service

# the services GET /health requires: without them no bill can be made
REQUIRED_SERVICES = (CUSTOMERS, INVENTORY, BILLING)
# shown in GET /services too, but the mesh serves bills without them
OPTIONAL_SERVICES = (ANALYTICS, KAFKA_BRIDGE)
# every nameko service that answers RPC (ping, describe)
RPC_SERVICES = REQUIRED_SERVICES + OPTIONAL_SERVICES
# processes that run once whatever INSTANCES says: the gateway binds the HTTP
# port; the aggregator's state is one consumer group
SINGLE_INSTANCE = (GATEWAY, STREAMS)
