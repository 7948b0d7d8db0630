"""Billing whose database write takes 2 s: a request is surely in flight when
the test stops the process. Run as ``nameko run tests.integration.services_under_test.slow_billing``."""
import logging

import eventlet

from services.billing import BillingService

log = logging.getLogger(__name__)


class SlowBillingService(BillingService):

    def _store(self, *args):
        log.info("storing slowly")
        eventlet.sleep(2)
        return super()._store(*args)
