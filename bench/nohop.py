"""The no-hop limit: the fastest a Python server on this machine answers
``GET /customers/{id}``, against which the mesh's read is measured.

One eventlet WSGI process reads the customer's row from the customers service's
own SQLite file (no broker, no RPC, no ORM) and answers the same JSON the
gateway answers:

    .venv/bin/python -m bench.nohop var/customers.db 127.0.0.1:8099
    curl http://127.0.0.1:8099/customers/1  -> {"id":1,"name":"Mohamed","email":"med@gmail.com"}
"""
import eventlet

eventlet.monkey_patch()

import sqlite3  # noqa: E402
import sys  # noqa: E402

from eventlet import wsgi  # noqa: E402

from contracts.wire import to_json  # noqa: E402


def make_app(db_path):
    # one connection: every greenthread runs on the one OS thread, and a
    # primary-key read never yields, so they cannot interleave inside a query
    connection = sqlite3.connect(db_path, check_same_thread=False)

    def answer(start_response, status, payload):
        body = to_json(payload).encode()
        start_response(status, [("Content-Type", "application/json"),
                                ("Content-Length", str(len(body)))])
        return [body]

    def app(environ, start_response):
        parts = environ["PATH_INFO"].strip("/").split("/")
        if len(parts) != 2 or parts[0] != "customers" or not parts[1].isdigit():
            return answer(start_response, "404 Not Found",
                          {"error": "NOT_FOUND", "message": "no route"})
        row = connection.execute("SELECT id, name, email FROM customers WHERE id = ?",
                                 (int(parts[1]),)).fetchone()
        if row is None:
            return answer(start_response, "404 Not Found",
                          {"error": "CUSTOMER_NOT_FOUND", "message": "no customer"})
        return answer(start_response, "200 OK",
                      {"id": row[0], "name": row[1], "email": row[2]})

    return app


def main():
    db_path, address = sys.argv[1], sys.argv[2]
    host, _, port = address.rpartition(":")
    wsgi.server(eventlet.listen((host, int(port))), make_app(db_path),
                log_output=False, max_size=1000)


if __name__ == "__main__":
    main()
