"""Bounded growth (mesh.retention) in running services against the real
RabbitMQ: inbox records and dispatched outbox events are pruned after their
retention, what they were about stays."""
from helpers import query, wait_for


def count(config, service, sql):
    return query(config, service, sql)[0][0]


def short_retention(config):
    config.update(RPC_TIMEOUT=1, INBOX_RETENTION_S=1, OUTBOX_RETENTION_S=1,
                  PRUNE_INTERVAL_S=0.2)
    return config


def test_inbox_records_are_pruned_after_their_retention(start_mesh, mesh_config, rpc):
    config = short_retention(mesh_config)
    start_mesh(config, "customers")
    created = rpc.customers.create_customer({"name": "Ali", "email": "ali@mail.com"})
    assert count(config, "customers", "SELECT count(*) FROM inbox") == 1
    wait_for(lambda: count(config, "customers", "SELECT count(*) FROM inbox") == 0, 10,
             "the inbox record pruned after INBOX_RETENTION_S")
    assert rpc.customers.get_customer(created["id"]) == created


def test_dispatched_outbox_events_are_pruned_after_their_retention(start_mesh, mesh_config, rpc):
    config = short_retention(mesh_config)
    start_mesh(config, "billing")
    # the seed bills' events: dispatched by the relay, marked, then pruned
    assert count(config, "billing", "SELECT count(*) FROM outbox_events") == 3
    wait_for(lambda: count(config, "billing", "SELECT count(*) FROM outbox_events") == 0,
             15, "the dispatched seed events pruned after OUTBOX_RETENTION_S")
    assert count(config, "billing", "SELECT count(*) FROM bills") == 3
    assert rpc.billing.get_outbox_backlog() == 0
