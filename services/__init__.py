"""The billing-mesh services: ``nameko run --config config.yaml services.<name>``."""
