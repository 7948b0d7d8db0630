"""``Pending``: ids that a service's workers gather and a timer of the same
service drains in one go (one statement, one event) instead of one each.

    class InventoryService:
        stock_changes = Pending()

        @rpc
        def reserve_stock(self, ...):
            self.stock_changes.update(product_ids)

        @timer(interval=0.05)
        def publish_stock_changes(self):
            ...  # one event for all of self.stock_changes, then clear it

The set belongs to one service instance and lives in memory: whatever is
pending when the instance stops is lost, so use it only where the timer's work
is also done another way (the outbox relay re-sends, a cache TTL expires).
In an inbox call (``mesh.inbox``) ids are added once the call has committed.
"""
from nameko.extensions import DependencyProvider

from mesh.inbox import after_commit_set


class Pending(DependencyProvider):
    """A set shared by every worker of one service instance."""

    def setup(self):
        self.ids = set()

    def get_dependency(self, worker_ctx):
        return after_commit_set(self.ids, worker_ctx)
