"""The registry view for people in a terminal: ``make services``.

    python -m tools.registry_view [--url http://127.0.0.1:8000]

Prints what ``GET /services`` answers, as a table:

    SERVICE    INSTANCES  STATUS  METHODS
    customers          1  up      create_customer, delete_customer, ...
"""
import argparse
import sys

import requests

from common.config import load_config
from tools.run import gateway_url


def table(services):
    rows = [("SERVICE", "INSTANCES", "STATUS", "METHODS")]
    for service in services:
        rows.append((service["name"], str(service["instances"]), service["status"],
                     ", ".join(service["methods"]) or "-"))
    widths = [max(len(row[column]) for row in rows) for column in range(3)]
    return "\n".join("{:<{}}  {:>{}}  {:<{}}  {}".format(
        row[0], widths[0], row[1], widths[1], row[2], widths[2], row[3]) for row in rows)


def main(argv=None):
    parser = argparse.ArgumentParser(description="Show every service of the mesh.")
    parser.add_argument("--url", default=gateway_url(load_config()),
                        help="the gateway (default: from config.yaml)")
    args = parser.parse_args(argv)
    try:
        response = requests.get(args.url + "/services", timeout=10)
        response.raise_for_status()
    except requests.RequestException as exc:
        sys.exit("the gateway at {} does not answer ({}): is `make run` running?".format(
            args.url, exc))
    print(table(response.json()["services"]))


if __name__ == "__main__":
    main()
