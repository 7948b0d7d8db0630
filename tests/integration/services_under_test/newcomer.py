"""A service the repository does not have, declared as a newcomer declares
one, and run in one process with the gateway, whose code is not touched:
``GET /health``, ``GET /services`` (the console's registry) and the heartbeats
must follow the declaration alone (``mesh.operations``). Run as
``nameko run tests.integration.services_under_test.newcomer``.

The declaration goes in before anything derives from it, as if
``Service(PAYMENTS)`` were a line of ``contracts/services.py`` DECLARATIONS.
"""
from contracts import services as declarations

PAYMENTS = "payments"
NEWCOMER = declarations.Service(PAYMENTS)
declarations.DECLARATIONS += (NEWCOMER,)
declarations.BY_NAME[PAYMENTS] = NEWCOMER
declarations.RPC_SERVICES += (PAYMENTS,)
declarations.OPTIONAL_SERVICES += (PAYMENTS,)
declarations.NAMEKO_SERVICES += (PAYMENTS,)
declarations.EVENTS += tuple(NEWCOMER.events)

import mesh.service  # noqa: E402  (after the declaration, as a declared service's module)
from mesh.rpc import rpc  # noqa: E402
from services.gateway import GatewayService  # noqa: E402,F401  nameko runs it beside


class PaymentsService(mesh.service.MeshService):
    name = PAYMENTS

    @rpc
    def get_balance(self, customer_id):
        """What a customer owes.

            >>> n.rpc.payments.get_balance(1)
            {'customer_id': 1, 'balance': '0.00'}
        """
        return {"customer_id": customer_id, "balance": "0.00"}
