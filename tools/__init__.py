"""Tools around the mesh, for people and scripts: the launcher (``make run``),
the registry view (``make services``), the one starter of the local Kafka
broker, and waiting for ports and health. Nothing here runs inside a service."""
