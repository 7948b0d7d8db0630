"""An asyncio HTTP app over the mesh, through ``mesh.aio`` (aiohttp, no nameko,
no eventlet): what a team's own service outside the mesh looks like.

    .venv/bin/python -m examples.aio_app --port 8080 --config config.yaml
    curl localhost:8080/customers/1/summary
    # {"customer": {"id": 1, "name": "Mohamed", "email": "med@gmail.com"}, "bills": 1,
    #  "analytics": {"customer_id": 1, "revenue": "9899.00", "bills": 1}}
    curl localhost:8080/health

``GET /customers/{id}/summary`` asks customers, billing and analytics at once
(``asyncio.gather``), each call with the mesh's deadline. analytics is optional
in the mesh (``contracts.services.OPTIONAL_SERVICES``): without it the summary
still answers, with ``"analytics": null``. Errors answer as the gateway's do:
``{"error": "CUSTOMER_NOT_FOUND", "message": ...}`` with the error's status (404,
503 when a service did not answer in time). The caller's ``X-Request-ID`` (or a
new one) is answered back and sent with every call, so
``grep <id> var/log/*.log`` finds what the request did in the services.
"""
import argparse
import asyncio
import logging
import uuid

from aiohttp import web

import mesh.aio
from contracts.errors import MeshError, ServiceUnavailable
from contracts.limits import MAX_ID
from contracts.services import ANALYTICS, BILLING, CUSTOMERS, OPTIONAL_SERVICES
from contracts.wire import to_json

log = logging.getLogger("examples.aio_app")

MESH = web.AppKey("mesh", mesh.aio.Mesh)
CONFIG = web.AppKey("config", object)
HEALTH_TIMEOUT = 1.0


def answer(payload, status=200):
    # money as text with two decimals, times ISO 8601 (contracts.wire): never a float
    return web.json_response(payload, status=status, dumps=to_json)


def error_answer(exc):
    if isinstance(exc, MeshError):
        return answer({"error": exc.code, "message": exc.message}, exc.status)
    log.error("%s", exc, exc_info=exc)
    return answer({"error": "INTERNAL_ERROR",
                   "message": "{}: {}".format(type(exc).__name__, exc)}, 500)


@web.middleware
async def request_ids(request, handler):
    """Keeps the caller's X-Request-ID (or makes one), answers it back, and
    gives the handler ``request["mesh"]``: the client sending that id."""
    given = request.headers.get("X-Request-ID")
    # the mesh's rule for ids (mesh.aio.VALID_REQUEST_ID, as the gateway's)
    request_id = given if given and mesh.aio.VALID_REQUEST_ID.match(given) else uuid.uuid4().hex
    request["mesh"] = request.app[MESH].with_request_id(request_id)
    try:
        response = await handler(request)
    except (MeshError, mesh.aio.RemoteError) as exc:
        response = error_answer(exc)
    response.headers["X-Request-ID"] = request_id
    return response


def customer_id_of(request):
    text = request.match_info["customer_id"]
    # as the gateway: an id no table can hold is simply not found
    if not text.isdigit() or not 1 <= int(text) <= MAX_ID:
        raise web.HTTPNotFound(text=to_json({"error": "NOT_FOUND", "message": "no customer "
                                             + text}), content_type="application/json")
    return int(text)


async def customer_summary(request):
    """The customer, how many bills name them, and analytics' figures, asked at once."""
    customer_id = customer_id_of(request)
    client = request["mesh"]
    customer, bills, stats = await asyncio.gather(
        client.customers.get_customer(customer_id),
        client.billing.count_bills(customer_id=customer_id),
        client.analytics.get_customer_stats(customer_id),
        return_exceptions=True)
    for service, result in ((CUSTOMERS, customer), (BILLING, bills), (ANALYTICS, stats)):
        if isinstance(result, BaseException):
            if service in OPTIONAL_SERVICES and isinstance(result, ServiceUnavailable):
                log.warning("summary of %s without %s: %s", customer_id, service, result)
                continue
            raise result
    return answer({"customer": customer, "bills": bills,
                   "analytics": None if isinstance(stats, BaseException) else stats})


async def health(request):
    """Every service the summary asks, pinged at once: 200 when the required
    ones answer within HEALTH_TIMEOUT, 503 otherwise."""
    client = request["mesh"].within(HEALTH_TIMEOUT)
    services = (CUSTOMERS, BILLING, ANALYTICS)
    pings = await asyncio.gather(*(client[name].ping() for name in services),
                                 return_exceptions=True)
    states = {name: "down" if isinstance(ping, BaseException) else "up"
              for name, ping in zip(services, pings)}
    required_up = all(state == "up" for name, state in states.items()
                      if name not in OPTIONAL_SERVICES)
    return answer({"status": "ok" if required_up else "down", "services": states},
                  200 if required_up else 503)


async def mesh_client(app):
    """One client for the app's life: connected at start, closed at stop."""
    async with mesh.aio.connect(app[CONFIG]) as client:
        app[MESH] = client
        yield


def make_app(config="config.yaml"):
    """The app: ``config`` as ``mesh.aio.connect`` takes it (a file, an AMQP
    URI, a dict)."""
    app = web.Application(middlewares=[request_ids])
    app[CONFIG] = config
    app.cleanup_ctx.append(mesh_client)
    app.router.add_get("/customers/{customer_id}/summary", customer_summary)
    app.router.add_get("/health", health)
    return app


def main(argv=None):
    parser = argparse.ArgumentParser(prog="python -m examples.aio_app", description=__doc__.split(
        "\n\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8080)
    parser.add_argument("--config", default="config.yaml",
                        help="the mesh's config file (AMQP_URI, RPC_TIMEOUT), or an AMQP URI")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    web.run_app(make_app(args.config), host=args.host, port=args.port, print=lambda _: log.info(
        "mesh.aio example app on http://%s:%s (mesh: %s)", args.host, args.port, args.config))


if __name__ == "__main__":
    main()
