"""The answers of the mesh's operations routes (``mesh.operations``): health,
the registry view, the admin RPC route. ``mesh.http`` checks the admin route's
body against ``RpcArguments`` before it runs; ``GET /openapi.json`` is generated
from these models with the gateway's own (``mesh.openapi``).
"""
from typing import Any, Dict, List, Literal, Optional

from pydantic import BaseModel, RootModel


class RpcArguments(RootModel[Dict[str, Any]]):
    """The keyword arguments of the RPC method, as a JSON object."""


class RpcAnswer(RootModel[Any]):
    """Whatever the method answered, as JSON."""


class Liveness(BaseModel):
    status: Literal["ok"]


PartState = Literal["up", "catching_up", "rebuilding", "down", "unknown"]


class Health(BaseModel):
    """``ok``: every part up; ``catching_up``: all serve, some are still behind
    (events waiting in their queues, not yet through the pipeline);
    ``degraded``: a part that is not required is down or cannot tell (bills
    are still made); ``rebuilding``: a part is being rebuilt (the analytics,
    from billing's record: bills are still made), how far under ``progress``."""

    status: Literal["ok", "catching_up", "rebuilding", "degraded"]
    services: Dict[str, PartState]
    progress: Optional[Dict[str, Dict[str, Any]]] = None
    # only with AUTH=off (the test suite's fixtures): no token is checked
    auth: Optional[str] = None


class HealthDown(BaseModel):
    """A required service (``contracts.services``: no bill can be made without
    it) is down."""

    status: Literal["unavailable"]
    services: Dict[str, PartState]
    error: Literal["SERVICE_UNAVAILABLE"]
    message: str
    auth: Optional[str] = None  # as in Health


class InstanceEntry(BaseModel):
    """One instance, from its heartbeats (``contracts.events.heartbeat``)."""

    instance: str
    host: str
    pid: int
    python: str
    hub: str  # the event loop it runs on: "asyncio" (eventlet's asyncio hub)
    uptime_s: float


class ServiceEntry(BaseModel):
    name: str
    instances: int  # consuming its RPC queue now
    methods: List[str]
    status: Literal["up", "down"]
    instance_list: List[InstanceEntry]  # those whose heartbeats arrive
    # what those instances served since they started: calls, errors, seconds, busy
    metrics: Dict[str, float]


class Services(BaseModel):
    services: List[ServiceEntry]
