"""The services' databases from the command line (``make db``, ``make db-upgrade``).

    python -m tools.db status              # each database's revision and its history's head
    python -m tools.db upgrade             # upgrade them, as their services' starts do
    python -m tools.db revision billing -m "add bills.note"    # a new revision (autogenerate)

The databases are those of the services declared with one
(``contracts.services``), where ``common.config.database_uri`` finds them
(``BILLING_DB_URI=postgresql://... python -m tools.db status``); name services
to take only those (``status billing``). ``upgrade`` is ``mesh.db.bootstrap``,
what a service's start runs, in one transaction under the database lock: a
database made before migrations is stamped 0001 first; an empty one is left to
its service's first start, which creates and seeds it.

``revision`` upgrades a scratch SQLite database to head, compares it with the
models (``services/<service>_models.py``) and writes what differs as
``migrations/<service>/versions/<next number>_<message>.py``; ``--empty`` writes
an empty one (a data migration). Read what it wrote and adjust it: see
docs/operations.md, "Database migrations".

It imports ``mesh.db``, the one place that knows how a database is locked,
stamped, upgraded and seeded (tests/unit/test_layers.py allows it this module).
"""
import argparse
import os
import sys
import tempfile

from alembic import command
from sqlalchemy.engine import make_url

from common.config import database_uri, load_config
from contracts.services import DATABASE_SERVICES
from mesh.db import (alembic_config, bootstrap, database_state, make_engine,
                     script_directory, sqlite_path)

STATES = {
    "absent": "no database yet (its service's first start creates and seeds it)",
    "empty": "empty (its service's first start creates and seeds it)",
    "premigration": "made before migrations (upgrading stamps {baseline}, then upgrades)",
    "at head": "at head",
    "behind": "behind (make db-upgrade, or start its service)",
}


def databases(config, only=()):
    """``[(service, uri)]`` of every service declared with a database (its
    migration history has its name), in declaration order; ``only``: those services."""
    found = [(name, database_uri(config, name)) for name in DATABASE_SERVICES]
    unknown = sorted(set(only) - {name for name, _ in found})
    if unknown:
        raise SystemExit("no service with a database is named {} (declared: {})".format(
            ", ".join(unknown), ", ".join(name for name, _ in found)))
    return [(name, uri) for name, uri in found if not only or name in only]


def first_line(exc):
    return (str(exc).strip().splitlines() or [type(exc).__name__])[0]


def shown(uri):
    return make_url(uri).render_as_string(hide_password=True)


def absent(uri):
    """A SQLite file not made yet (connecting would make it)."""
    url = make_url(uri)
    return (url.get_backend_name() == "sqlite" and url.database not in (None, "", ":memory:")
            and not os.path.exists(sqlite_path(url)))


def state_of(name, uri):
    """``(state, current, head)``; state ``"absent"``: no SQLite file yet."""
    if absent(uri):
        script = script_directory(name)
        return "absent", None, script.get_current_head()
    engine = make_engine(uri)
    try:
        with engine.connect() as connection:
            return database_state(connection, name)
    finally:
        engine.dispose()


def status(config, only=()):
    rows, failed = [], False
    for name, uri in databases(config, only):
        try:
            state, current, head = state_of(name, uri)
            baseline = script_directory(name).get_base()
            what = STATES[state].format(baseline=baseline)
        except Exception as exc:  # noqa: BLE001  say which database, go on with the others
            state, current, head, what, failed = "error", None, "?", "error: " + first_line(exc), True
        rows.append((name, current or "-", head, what, shown(uri)))
    table = [("DATABASE", "REVISION", "HEAD", "STATE", "URI")] + rows
    widths = [max(len(row[i]) for row in table) for i in range(4)]
    for row in table:
        print("  ".join(cell.ljust(width) for cell, width in zip(row, widths)) + "  " + row[4])
    return 1 if failed else 0


def upgrade(config, only=()):
    failed = False
    for name, uri in databases(config, only):
        if absent(uri):
            print("{} database: no database yet at {}, left for its service's first "
                  "start".format(name, shown(uri)))
            continue
        engine = make_engine(uri)
        try:
            print(bootstrap(engine, None, migrations=name, create=False))
        except Exception as exc:  # noqa: BLE001
            print("{} database: not upgraded: {}".format(name, first_line(exc)), file=sys.stderr)
            failed = True
        finally:
            engine.dispose()
    return 1 if failed else 0


def next_revision_id(script):
    """Revisions are numbered: ``0001``, ``0002``, ..."""
    numbers = [int(rev.revision) for rev in script.walk_revisions() if rev.revision.isdigit()]
    return "{:04d}".format(max(numbers, default=0) + 1)


def revision(name, message, empty=False):
    """Write the next revision of ``name``'s history (``0001``, every table of
    the models, when it has none yet); return its path (None: autogenerate
    found no difference, nothing written)."""
    script = script_directory(name)
    rev_id = next_revision_id(script)
    written = []

    def keep_unless_empty(_context, _revision, directives):
        if not empty and directives[0].upgrade_ops.is_empty():
            directives[:] = []

    with tempfile.TemporaryDirectory() as folder:
        engine = make_engine("sqlite:///" + os.path.join(folder, "head.db"))
        try:
            if script.get_heads():
                bootstrap(engine, None, migrations=name)  # empty -> head, unseeded
            # else a new history (make new-service): its first revision makes
            # every table of the models, compared with an empty database
            with engine.connect() as connection:
                config = alembic_config(name, connection)
                config.attributes["process_revision_directives"] = keep_unless_empty
                made = command.revision(config, message=message, autogenerate=not empty,
                                        rev_id=rev_id)
                written = [made] if made is not None and not isinstance(made, list) else made or []
        finally:
            engine.dispose()
    return written[0].path if written else None


def main(argv=None):
    parser = argparse.ArgumentParser(
        prog="python -m tools.db",
        description="The databases of the services declared with one: their revisions, "
                    "upgrading them, writing a new revision.")
    commands = parser.add_subparsers(dest="command", required=True)
    for verb, text in (("status", "each database's revision and head"),
                       ("upgrade", "upgrade the databases to head")):
        sub = commands.add_parser(verb, help=text)
        sub.add_argument("services", nargs="*", help="only these (default: every service with a database)")
    sub = commands.add_parser("revision", help="write the next revision of a service's history")
    sub.add_argument("service")
    sub.add_argument("-m", "--message", required=True, help="what it changes (the file's name)")
    sub.add_argument("--empty", action="store_true",
                     help="an empty revision to write by hand (no autogenerate)")
    args = parser.parse_args(argv)

    if args.command == "revision":
        path = revision(args.service, args.message, empty=args.empty)
        if path is None:
            print("{}'s models and migrations/{}/ at head agree: no revision written "
                  "(--empty for a hand-written one)".format(args.service, args.service))
            return 0
        print("wrote {}: read it, adjust it, then run tests/unit/test_migrations.py".format(
            os.path.relpath(path)))
        return 0
    config = load_config()
    return (status if args.command == "status" else upgrade)(config, tuple(args.services))


if __name__ == "__main__":
    sys.exit(main())
