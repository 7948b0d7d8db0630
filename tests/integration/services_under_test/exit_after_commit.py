"""The real services, each ending its process right after one write method's
call commits, before the reply and the acknowledgement: the crash the inbox
(``mesh.inbox``) is about, for tests/integration/test_inbox.py. Run as
``nameko run tests.integration.services_under_test.exit_after_commit:CreateBillExits``.

The process ends with ``os._exit``: no reply, no acknowledgement, no cleanup,
as if it were killed, so RabbitMQ delivers the request again to the next
instance."""
import os
import sys

from nameko.extensions import DependencyProvider
from sqlalchemy import event

from services.billing import BillingService
from services.customers import CustomersService
from services.inventory import InventoryService

# the exit status that tells this exit from a crash of another kind
EXIT_CODE = 75


class ExitAfterCommit(DependencyProvider):
    """Ends the process right after the commit of a call of ``method``: the
    call's one session (every ``self.db.get_session()`` of an inbox call,
    ``mesh.inbox``) exits when it has committed, whichever commits it (the
    framework once the method returned, or a block that handed its answer).
    A listener of the session itself runs after the inbox's own: the work
    waiting for the commit (change events) has run by then; what the method
    does after a block that committed (billing's dispatch) has not."""

    def __init__(self, method):
        self.method = method

    def worker_setup(self, worker_ctx):
        if worker_ctx.entrypoint.method_name == self.method:
            session = worker_ctx.service.db.get_session()
            event.listen(session, "after_commit", self._exit)

    def _exit(self, _session):
        # logging may buffer; stderr is the process's log file (tests/helpers.py)
        sys.stderr.write("{}: exiting after the commit, before the reply\n".format(self.method))
        sys.stderr.flush()
        os._exit(EXIT_CODE)


class CreateCustomerExits(CustomersService):
    exit_after_commit = ExitAfterCommit("create_customer")


class ReserveStockExits(InventoryService):
    exit_after_commit = ExitAfterCommit("reserve_stock")


class CreateBillExits(BillingService):
    exit_after_commit = ExitAfterCommit("create_bill")


class CancelBillExits(BillingService):
    exit_after_commit = ExitAfterCommit("cancel_bill")
