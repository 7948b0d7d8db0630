"""The no-hop limits: the fastest a Python server on this machine answers
``GET /customers/{id}``, against which the mesh's reads are measured.

One eventlet WSGI process, no broker, no RPC, no ORM, on the hub ``EVENTLET_HUB``
names (the benchmark gives it the mesh's). Two kinds, one per read of the mesh:

* the SQLite limit, for the uncached read: reads the customer's row from the
  customers service's own SQLite file on every request and answers the same
  JSON the gateway answers;
* the memory limit, for the cached read (the gateway answers that one from its
  read cache, in memory): answers a fixed body, read once from a file, which the
  benchmark writes with the gateway's own answer, so the two are the same size.

    .venv/bin/python -m bench.nohop var/customers.db 127.0.0.1:8099
    curl http://127.0.0.1:8099/customers/1  -> {"id":1,"name":"Mohamed","email":"med@gmail.com"}
    .venv/bin/python -m bench.nohop --memory answer.json 127.0.0.1:8098
    curl http://127.0.0.1:8098/customers/1  -> the bytes of answer.json, whatever the id
    curl http://127.0.0.1:8098/hub          -> {"hub":"asyncio","python":"3.13.0"}
"""
import eventlet

eventlet.monkey_patch()

import argparse  # noqa: E402
import platform  # noqa: E402
import sqlite3  # noqa: E402

from eventlet import wsgi  # noqa: E402

from contracts.wire import to_json  # noqa: E402
from mesh.hub import hub_name  # noqa: E402


def answer(start_response, status, payload):
    body = payload if isinstance(payload, bytes) else to_json(payload).encode()
    start_response(status, [("Content-Type", "application/json"),
                            ("Content-Length", str(len(body)))])
    return [body]


def route(environ):
    """``("customers", 1)`` for ``/customers/1``; ``("hub", None)``; else None."""
    parts = environ["PATH_INFO"].strip("/").split("/")
    if parts == ["hub"]:
        return "hub", None
    if len(parts) == 2 and parts[0] == "customers" and parts[1].isdigit():
        return "customers", int(parts[1])
    return None


def not_found(start_response):
    return answer(start_response, "404 Not Found", {"error": "NOT_FOUND", "message": "no route"})


def hub_answer(start_response):
    """Which hub and Python this server runs on (the benchmark checks it)."""
    return answer(start_response, "200 OK",
                  {"hub": hub_name(), "python": platform.python_version()})


def customers_app(customer):
    """A WSGI app answering ``/customers/{id}`` with ``customer(start_response,
    id)``, and ``/hub``: the routing both limits share."""

    def app(environ, start_response):
        found = route(environ)
        if found is None:
            return not_found(start_response)
        if found[0] == "hub":
            return hub_answer(start_response)
        return customer(start_response, found[1])

    return app


def make_app(db_path):
    """The SQLite limit: the row read on every request."""
    # one connection: every greenthread runs on the one OS thread, and a
    # primary-key read never yields, so they cannot interleave inside a query
    connection = sqlite3.connect(db_path, check_same_thread=False)

    def customer(start_response, customer_id):
        row = connection.execute("SELECT id, name, email FROM customers WHERE id = ?",
                                 (customer_id,)).fetchone()
        if row is None:
            return answer(start_response, "404 Not Found",
                          {"error": "CUSTOMER_NOT_FOUND", "message": "no customer"})
        return answer(start_response, "200 OK",
                      {"id": row[0], "name": row[1], "email": row[2]})

    return customers_app(customer)


def make_memory_app(body):
    """The memory limit: ``body`` (bytes) for every ``/customers/{id}``."""
    return customers_app(lambda start_response, customer_id: answer(
        start_response, "200 OK", body))


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--memory", metavar="BODY_FILE",
                        help="answer this file's bytes from memory (the cached read's limit)")
    parser.add_argument("where", nargs="+", metavar="[DB_PATH] ADDRESS",
                        help="the SQLite file (not with --memory), then host:port")
    args = parser.parse_args(argv)
    if len(args.where) != (1 if args.memory else 2):
        parser.error("give DB_PATH ADDRESS, or --memory BODY_FILE ADDRESS")
    if args.memory:
        with open(args.memory, "rb") as handle:
            app = make_memory_app(handle.read())
    else:
        app = make_app(args.where[0])
    host, _, port = args.where[-1].rpartition(":")
    wsgi.server(eventlet.listen((host, int(port))), app, log_output=False, max_size=1000)


if __name__ == "__main__":
    main()
