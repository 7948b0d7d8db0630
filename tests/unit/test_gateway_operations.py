"""The gateway's operations (``mesh.operations``) follow the declarations
(``contracts.services``): the heartbeats of every declared RPC service are
heard, every one has a client, and the domain gateway names none of them for
its health or registry. A newly declared service served end to end:
tests/integration/test_operations.py."""
import ast
import inspect

from nameko.extensions import ENTRYPOINT_EXTENSIONS_ATTR

import services.gateway
from contracts.events import HEARTBEAT
from contracts.services import RPC_SERVICES
from mesh.events import BroadcastHandler
from mesh.operations import GatewayOperations
from mesh.proxy import ServiceClients
from services.gateway import GatewayService


def test_the_heartbeat_of_every_declared_rpc_service_is_heard():
    handlers = getattr(GatewayService.record_heartbeat, ENTRYPOINT_EXTENSIONS_ATTR)
    heard = sorted(handler.source_service for handler in handlers
                   if isinstance(handler, BroadcastHandler) and handler.event_type == HEARTBEAT)
    assert heard == sorted(RPC_SERVICES)


def test_every_declared_rpc_service_has_a_client():
    clients = [value for value in vars(GatewayOperations).values()
               if isinstance(value, ServiceClients)]
    assert [client.services for client in clients] == [RPC_SERVICES]


def test_the_domain_gateway_serves_no_operations_route_of_its_own():
    """services/gateway.py: the domain's routes, its readiness, the feeds and
    the cache; what every gateway serves is inherited."""
    mine = {name for name, value in vars(GatewayService).items()
            if getattr(value, ENTRYPOINT_EXTENSIONS_ATTR, None)}
    inherited = {name for name, value in vars(GatewayOperations).items()
                 if getattr(value, ENTRYPOINT_EXTENSIONS_ATTR, None)}
    assert not mine & inherited, mine & inherited
    tree = ast.parse(inspect.getsource(services.gateway))
    by_name = [node for node in ast.walk(tree) if isinstance(node, ast.Call)
               and getattr(node.func, "id", None) == "getattr"]
    assert not by_name, "services/gateway.py looks attributes up by name: {}".format(
        [ast.unparse(node) for node in by_name])
