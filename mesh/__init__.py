"""The mesh's plumbing, shared by every service: errors, config, RPC deadlines,
databases and the JSON HTTP edge. Domain code lives in ``services/``."""
