"""Context data that travels with every RPC call and event, as nameko headers
(``nameko.<key>``), so it flows on through every further hop."""
import re

# the caller's deadline (epoch seconds): the callee refuses work past it. Read it
# with float(): nameko's proxies send a float, mesh.aio sends text (aio-pika would
# encode a float as AMQP's 32-bit float, minutes coarse at today's epoch)
DEADLINE_KEY = "deadline"
# the X-Request-ID of the HTTP request that caused the call
REQUEST_ID_KEY = "request_id"
# who asked: the subject of the bearer token, and the client it was issued to
# (mesh.auth), on every call and event the request causes
CALLER_KEY = "caller"
CLIENT_ID_KEY = "client_id"
MAX_CALLER_LENGTH = 255  # what billing stores (created_by, cancelled_by)
# what a request id may be: one the services' log lines can carry and grep can find
# (the gateway replaces any other with a new one; mesh.aio refuses it)
VALID_REQUEST_ID = re.compile(r"^[A-Za-z0-9._:-]{1,128}$")


def header_name(key):
    """``"deadline"`` -> ``"nameko.deadline"``: how nameko sends context data."""
    return "nameko." + key
