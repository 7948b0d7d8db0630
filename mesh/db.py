"""Each service's database: nameko-sqlalchemy's ``Database`` made safe for the mesh.

On top of nameko-sqlalchemy it adds what every service needs and none should
write again:

* SQLite in WAL mode with a busy timeout (several instances share one file);
  PostgreSQL through psycopg2 made cooperative with ``psycogreen``;
* tables created and seed data written on the first start of an empty
  database, under a database lock, so two instances starting together seed once;
* no commit after the caller's RPC deadline (see ``mesh.proxy``): a request
  answered 503 never takes effect later.

Schema: tables come from the service's ``DeclarativeBase`` (``create_all`` on
first start). There has been no schema change yet; the first one brings Alembic.
"""
import logging
import os
import sqlite3
import time
from functools import partial

from nameko_sqlalchemy.database import Database, DatabaseWrapper
from nameko_sqlalchemy.database import Session as NamekoSession
from sqlalchemy import create_engine, event, inspect
from sqlalchemy.engine import make_url
from sqlalchemy.orm import Session, sessionmaker

from common.config import ROOT
from contracts.errors import DeadlineExceeded
from contracts.headers import DEADLINE_KEY

log = logging.getLogger(__name__)

SQLITE_BUSY_TIMEOUT_S = 10


class MeshSession(NamekoSession):
    """A session that refuses to commit once its worker's caller gave up."""


@event.listens_for(MeshSession, "before_commit")
def _refuse_late_commit(session):
    deadline = session.info.get(DEADLINE_KEY)
    if deadline is not None and time.time() > float(deadline):
        raise DeadlineExceeded("the caller's deadline passed before the commit")


def make_engine(uri):
    """An engine for ``uri`` with the mesh's settings (see module docstring).

    Relative SQLite paths are relative to the repository root, so services find
    the same files whatever their working directory.
    """
    url = make_url(uri)
    if url.get_backend_name() == "sqlite":
        if url.database and url.database != ":memory:":
            path = url.database
            if not os.path.isabs(path):
                path = os.path.join(ROOT, path)
            os.makedirs(os.path.dirname(path), exist_ok=True)
            url = url.set(database=path)
        engine = create_engine(url, connect_args={"timeout": SQLITE_BUSY_TIMEOUT_S})
        event.listen(engine, "connect", _sqlite_pragmas)
        return engine
    if url.get_backend_name() == "postgresql":
        # psycopg2 (SQLAlchemy 2.1's default for postgresql:// is psycopg 3),
        # because psycogreen makes it yield to eventlet instead of blocking
        from psycogreen.eventlet import patch_psycopg
        patch_psycopg()
        url = url.set(drivername="postgresql+psycopg2")
        return create_engine(url, pool_pre_ping=True)
    return create_engine(url)


def _sqlite_pragmas(dbapi_connection, _record):
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA busy_timeout={}".format(SQLITE_BUSY_TIMEOUT_S * 1000))
    # Switching to WAL needs the database to itself: two instances starting on a
    # new file together, one got "database is locked" at once, busy timeout or
    # not (seen in CI). Switch only if needed, and retry as long as the busy
    # timeout would wait.
    give_up_at = time.monotonic() + SQLITE_BUSY_TIMEOUT_S
    while True:
        try:
            if cursor.execute("PRAGMA journal_mode").fetchone()[0].lower() != "wal":
                cursor.execute("PRAGMA journal_mode=WAL")
            break
        except sqlite3.OperationalError as exc:
            if "locked" not in str(exc) or time.monotonic() > give_up_at:
                raise
            time.sleep(0.05)
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.close()


def bootstrap(engine, metadata, seed=None):
    """Create the tables, and seed them, if this database has none yet.

    Runs in one transaction holding a database-wide lock, so concurrent first
    starts (two instances of a service) create and seed exactly once.
    ``seed(session)`` adds rows; it is called only when the tables were absent.
    """
    with engine.begin() as connection:
        if engine.dialect.name == "sqlite":
            # take the write lock now, not at the first write
            connection.exec_driver_sql("BEGIN IMMEDIATE")
        elif engine.dialect.name == "postgresql":
            connection.exec_driver_sql(
                "SELECT pg_advisory_xact_lock(hashtext('billing-mesh:bootstrap'))")
        existing = set(inspect(connection).get_table_names())
        missing = [t for t in metadata.sorted_tables if t.name not in existing]
        if not missing:
            return False
        metadata.create_all(connection)
        fresh = len(missing) == len(metadata.sorted_tables)
        if fresh and seed is not None:
            session = Session(bind=connection)
            seed(session)
            session.flush()
        log.info("created tables %s%s", ", ".join(t.name for t in missing),
                 " and seed data" if fresh and seed else "")
        return True


def database_wrapper(session_factory, deadline=None):
    """What ``self.db`` is inside a worker: nameko-sqlalchemy's wrapper whose
    sessions carry the worker's deadline. Tests build one the same way."""
    return DatabaseWrapper(partial(session_factory, info={DEADLINE_KEY: deadline}))


def session_factory(engine):
    return sessionmaker(bind=engine, class_=MeshSession, expire_on_commit=False)


class MeshDatabase(Database):
    """``self.db`` of a service: ``with self.db.get_session() as session:``
    commits on success and rolls back on error.

        class CustomersService:
            db = MeshDatabase(CustomersBase, seed=seed_customers)
    """

    def __init__(self, declarative_base, seed=None):
        super().__init__(declarative_base)
        self.seed = seed

    def setup(self):
        service_name = self.container.service_name
        key = "{}:{}".format(service_name, self.declarative_base.__name__)
        uri = self.container.config["DB_URIS"][key]
        self.engine = make_engine(uri)
        self.Session = session_factory(self.engine)
        bootstrap(self.engine, self.declarative_base.metadata, self.seed)

    def get_dependency(self, worker_ctx):
        db = database_wrapper(self.Session, worker_ctx.data.get(DEADLINE_KEY))
        self.dbs[worker_ctx] = db
        return db
