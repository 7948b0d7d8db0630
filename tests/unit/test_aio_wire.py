"""``mesh.aio`` speaks nameko's wire format without importing nameko: its names
must stay nameko's (they are checked here against the pinned nameko itself)."""
from decimal import Decimal

from kombu.utils.json import dumps, loads
from nameko.constants import (
    DEFAULT_SERIALIZER, HEADER_PREFIX, RPC_EXCHANGE_CONFIG_KEY,
)
from nameko.rpc import RPC_QUEUE_TEMPLATE, get_rpc_exchange
from nameko.standalone.events import get_event_exchange

import common.topology as topology
import mesh.aio as aio
from contracts.errors import CustomerNotFound
from contracts.headers import header_name


def test_names_are_nameko_s():
    assert topology.RPC_EXCHANGE == get_rpc_exchange({}).name
    assert topology.RPC_EXCHANGE_CONFIG_KEY == RPC_EXCHANGE_CONFIG_KEY
    assert aio.RPC_QUEUE.format("billing") == RPC_QUEUE_TEMPLATE.format("billing")
    assert aio.EVENTS_EXCHANGE.format("billing") == get_event_exchange("billing", {}).name
    assert header_name("x") == HEADER_PREFIX + ".x"
    assert DEFAULT_SERIALIZER == "json" and aio.CONTENT_TYPE == "application/json"


def test_money_crosses_exactly_and_errors_are_the_mesh_s():
    assert loads(dumps({"total": Decimal("9899.00")})) == {"total": Decimal("9899.00")}
    error = aio.error_from({"exc_type": "CustomerNotFound", "value": "customer 9 does not exist",
                            "exc_path": "contracts.errors.CustomerNotFound", "exc_args": []})
    assert isinstance(error, CustomerNotFound) and error.code == "CUSTOMER_NOT_FOUND"
    other = aio.error_from({"exc_type": "ValueError", "value": "bad", "exc_path": "builtins.ValueError"})
    assert isinstance(other, aio.RemoteError) and other.exc_type == "ValueError"
