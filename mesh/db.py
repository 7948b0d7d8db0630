"""Each service's database: nameko-sqlalchemy's ``Database`` made safe for the mesh.

On top of nameko-sqlalchemy it adds what every service needs and none should
write again:

* SQLite in WAL mode with a busy timeout (several instances share one file);
  PostgreSQL through psycopg2 made cooperative with ``psycogreen``;
* the schema upgraded in place on every start, and seed data written on the
  first start of an empty database, under a database lock, so two instances
  starting together migrate and seed once;
* no commit after the caller's RPC deadline (see ``mesh.proxy``): a request
  answered 503 never takes effect later.

Schema: every change ships as an Alembic revision in ``migrations/<service>/``
(found from the service's declarative base: ``services.billing_models`` ->
``migrations/billing/``). On start, in one transaction holding the lock
(``bootstrap``):

* an empty database is upgraded to head, then seeded;
* a database made before migrations existed (tables, no ``alembic_version``)
  is stamped with the baseline revision (0001, exactly those tables), then
  upgraded to head;
* any other is upgraded to head (nothing to do when it is there).

One line says what happened: ``billing database: upgraded 0001 -> 0002``.
``python -m tools.db status|upgrade|revision`` uses the same functions. Bases
with no migration history (test services) still get ``create_all``.
"""
import contextlib
import logging
import os
import re
import sqlite3
import time
from functools import partial

# alembic logs each of its plugins at INFO when first imported: no news to a start
logging.getLogger("alembic.runtime.plugins").setLevel(logging.WARNING)

from alembic import command, context
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
import eventlet
from eventlet.semaphore import Semaphore
from nameko_sqlalchemy.database import Database, DatabaseWrapper
from sqlalchemy import MetaData, TypeDecorator, create_engine, event, inspect
from sqlalchemy.engine import make_url
from sqlalchemy.orm import DeclarativeBase, Session, sessionmaker

from common.config import ROOT, database_uri, seconds_setting
from contracts.errors import DeadlineExceeded
from contracts.headers import DEADLINE_KEY
from mesh.inbox import CallSession, open_call
from mesh.retention import DEFAULT_PRUNE_INTERVAL_S, inbox_retention_s, prune_older_than

log = logging.getLogger(__name__)

SQLITE_BUSY_TIMEOUT_S = 10
MIGRATIONS_DIR = os.path.join(ROOT, "migrations")
VERSION_TABLE = "alembic_version"
# the key the code before migrations locked too: an old and a new instance
# starting together still take turns (advisory locks are per database)
POSTGRES_LOCK = "SELECT pg_advisory_xact_lock(hashtext('billing-mesh:bootstrap'))"
MODELS_MODULE = re.compile(r"services\.(\w+)_models")
# alembic's ``context`` and ``op`` are process-wide proxies: one migration at a
# time in a process (a test runs every service in one; PostgreSQL's I/O yields)
_one_migration = Semaphore(1)


class MeshSession(CallSession):
    """A session that refuses to commit once its worker's caller gave up.

    Otherwise nameko-sqlalchemy's session, which in a call of an inbox method
    is the call's one session (``mesh.inbox.CallSession``).
    """


# inserted first: a late call is refused before the inbox writes its record
@event.listens_for(MeshSession, "before_commit", insert=True)
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
            url = url.set(database=sqlite_path(url))
            os.makedirs(os.path.dirname(url.database), exist_ok=True)
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


def sqlite_path(url):
    """The absolute path of a SQLite file URL (relative ones from the root)."""
    path = make_url(url).database
    return path if os.path.isabs(path) else os.path.join(ROOT, path)


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


# --- where a database's migrations are ----------------------------------------

def migrations_of(base_or_metadata):
    """The migration history of a service's tables, from its declarative base
    (or the base's ``MetaData``): ``BillingBase``, defined in
    ``services/billing_models.py``, -> ``"billing"``, ``migrations/billing/``.
    None for a base outside ``services/`` (a test's own tables)."""
    base = base_or_metadata
    if isinstance(base, MetaData):
        base = next((cls for cls in _declarative_bases() if cls.metadata is base), None)
    match = base is not None and MODELS_MODULE.fullmatch(base.__module__)
    if not match:
        return None
    name = match.group(1)
    if not os.path.isfile(os.path.join(MIGRATIONS_DIR, name, "env.py")):
        raise RuntimeError("{}.{} has no migration history: migrations/{}/env.py is "
                           "missing (is migrations/ deployed?)".format(
                               base.__module__, base.__qualname__, name))
    return name


def _declarative_bases():
    """Every ``DeclarativeBase`` subclass that holds its own ``MetaData``."""
    pending = list(DeclarativeBase.__subclasses__())
    while pending:
        cls = pending.pop()
        pending.extend(cls.__subclasses__())
        if "metadata" in vars(cls):
            yield cls


def alembic_config(history, connection=None):
    """Alembic's configuration of ``history`` (a name under ``migrations/``, or
    a script directory's path: tests' own copies), in code: the database
    is the service's (``common.config.database_uri``), and the connection Alembic runs on is the
    one holding the lock, so there is no alembic.ini (nor a second place for
    the URL that a bare ``alembic upgrade`` would use without the lock)."""
    config = Config()
    config.set_main_option("script_location", os.path.join(MIGRATIONS_DIR, history))
    config.set_main_option("file_template", "%%(rev)s_%%(slug)s")
    config.attributes["connection"] = connection
    return config


def script_directory(history):
    return ScriptDirectory.from_config(alembic_config(history))


def head_of(script, name):
    """The one head revision of a history. Revisions form one line, numbered
    in order: two heads (two branches that each added one) are refused."""
    heads = script.get_heads()
    if len(heads) != 1:
        raise RuntimeError("migrations/{}/ has {} heads ({}): revisions form one line; "
                           "renumber the later one and make it revise the other "
                           "(its down_revision)".format(
                               name, len(heads), ", ".join(sorted(heads)) or "none"))
    return heads[0]


def run_migrations(target_metadata):
    """The body of every ``migrations/<service>/env.py``: run Alembic on the
    connection ``bootstrap`` (or ``tools.db``) handed it, inside its locked
    transaction. ``target_metadata``: the service's models, for autogenerate."""
    connection = context.config.attributes.get("connection")
    if connection is None or context.is_offline_mode():
        raise RuntimeError("the migrations run through mesh.db, which holds the database "
                           "lock: start the service, or `python -m tools.db upgrade`")
    context.configure(
        connection=connection, target_metadata=target_metadata,
        # SQLite alters a table by copying it (batch mode); batch operations run
        # as plain ALTERs on PostgreSQL, so one script serves both
        render_as_batch=True,
        render_item=_render_item,
        process_revision_directives=context.config.attributes.get("process_revision_directives"))
    with context.begin_transaction():
        context.run_migrations()


def _render_item(kind, obj, _autogen_context):
    """Autogenerate writes a ``TypeDecorator`` column (``MoneyType``) as its
    storage type (``sa.BigInteger()``): revisions import no project code, so a
    later change of the code never changes history."""
    if kind == "type" and isinstance(obj, TypeDecorator):
        return "sa.{!r}".format(obj.impl_instance)
    return False


# --- what a start does ----------------------------------------------------------

def database_state(connection, history):
    """``(state, current revision, head revision)`` of the database behind
    ``connection`` for the history ``history``. state: ``"empty"`` (no table),
    ``"premigration"`` (tables, no ``alembic_version``: made before
    migrations), ``"at head"`` or ``"behind"``. A revision the history does
    not know (a newer release migrated it, or another service's database)
    raises."""
    name = os.path.basename(history)
    script = script_directory(history)
    head = head_of(script, name)
    tables = set(inspect(connection).get_table_names())
    versioned = VERSION_TABLE in tables
    tables.discard(VERSION_TABLE)
    current = (MigrationContext.configure(connection).get_current_revision()
               if versioned else None)
    if current is None:
        if not tables:
            return "empty", None, head
        if not versioned:
            return "premigration", None, head
        raise RuntimeError("{} database: tables {} but no revision in {}".format(
            name, ", ".join(sorted(tables)), VERSION_TABLE))
    if current not in {rev.revision for rev in script.walk_revisions()}:
        raise RuntimeError(
            "{} database is at revision {!r}, which migrations/{}/ does not have: a newer "
            "release migrated it, or it is another service's database".format(
                name, current, name))
    return ("at head" if current == head else "behind"), current, head


def bootstrap(engine, metadata, seed=None, migrations=None, create=True):
    """Bring the database up to date on start: see the module docstring; return
    the line it logged (``"billing database: upgraded 0001 -> 0002"``).

    Runs in one transaction holding a database-wide lock (SQLite's write lock,
    PostgreSQL's advisory lock), so concurrent starts (two instances of a
    service) migrate and seed exactly once; a failure rolls all of it back.
    ``seed(session)`` adds rows; it is called only on an empty database.
    ``migrations``: the history, a name under ``migrations/`` or a path
    (default: found from ``metadata``'s base, ``migrations_of``); a base with
    none gets ``create_all`` as before migrations. ``create=False`` leaves an
    empty database alone (``tools.db upgrade``: its service seeds it).
    """
    name = migrations or migrations_of(metadata)
    with _one_migration, _quiet_alembic(), _locked(engine) as connection:
        if name is None:
            done = _create_all(connection, metadata, seed)
        else:
            done = _migrate(connection, name, seed, create)
    if done:
        log.info(done)
    return done


@contextlib.contextmanager
def _locked(engine):
    """A connection in one transaction that holds the bootstrap lock, committed
    when the block succeeds."""
    sqlite = engine.dialect.name == "sqlite"
    with engine.connect() as connection:
        if sqlite:
            # A batch migration copies a table others reference, which SQLite
            # asks to do with foreign keys off (settable outside a transaction
            # only); they are checked before the commit instead.
            connection.exec_driver_sql("PRAGMA foreign_keys=OFF")
            connection.exec_driver_sql("BEGIN IMMEDIATE")  # the write lock, now
        elif engine.dialect.name == "postgresql":
            connection.exec_driver_sql(POSTGRES_LOCK)
        try:
            yield connection
            if sqlite:
                broken = connection.exec_driver_sql("PRAGMA foreign_key_check").fetchall()
                if broken:
                    raise RuntimeError("rows left without their foreign key's row: {}".format(
                        broken[:10]))
            connection.commit()
        finally:
            if connection.in_transaction():
                connection.rollback()
            if sqlite:
                connection.exec_driver_sql("PRAGMA foreign_keys=ON")
                connection.commit()


def _migrate(connection, history, seed, create):
    state, current, head = database_state(connection, history)
    config = alembic_config(history, connection)
    name = os.path.basename(history)
    if state == "at head":
        return "{} database: at head {}".format(name, head)
    if state == "empty":
        if not create:
            return "{} database: empty, left for its service's first start".format(name)
        command.upgrade(config, "head")
        _seed(connection, seed)
        return "{} database: empty, created at head {}{}".format(
            name, head, " and seeded" if seed else "")
    done = ""
    if state == "premigration":
        current = _stamp_baseline(connection, config, name)
        done = "made before migrations, stamped {}".format(current)
        if current == head:
            return "{} database: {} (at head)".format(name, done)
        done += ", "
    command.upgrade(config, "head")
    return "{} database: {}upgraded {} -> {}".format(name, done, current, head)


def _stamp_baseline(connection, config, name):
    """Record that a database made before migrations holds the baseline's
    tables (revision 0001 creates exactly what ``create_all`` made then)."""
    script = ScriptDirectory.from_config(config)
    baseline = script.get_revision(script.get_base())
    tables = set(inspect(connection).get_table_names())
    missing = sorted(set(baseline.module.TABLES) - tables)
    if missing:
        raise RuntimeError(
            "{} database has tables {} but not {}, and no {}: not a database its "
            "service made; refusing to stamp it {}".format(
                name, ", ".join(sorted(tables)), ", ".join(missing), VERSION_TABLE,
                baseline.revision))
    command.stamp(config, baseline.revision)
    return baseline.revision


@contextlib.contextmanager
def _quiet_alembic():
    """Alembic's INFO lines (its dialect, each revision run) say what
    bootstrap's one line says."""
    logger = logging.getLogger("alembic")
    level = logger.level
    logger.setLevel(max(level, logging.WARNING))
    try:
        yield
    finally:
        logger.setLevel(level)


def _create_all(connection, metadata, seed):
    """Tables with no migration history (a test's): created when missing."""
    existing = set(inspect(connection).get_table_names())
    missing = [t for t in metadata.sorted_tables if t.name not in existing]
    if not missing:
        return None
    metadata.create_all(connection)
    fresh = len(missing) == len(metadata.sorted_tables)
    if fresh:
        _seed(connection, seed)
    return "created tables {}{}".format(", ".join(t.name for t in missing),
                                        " and seed data" if fresh and seed else "")


def _seed(connection, seed):
    if seed is not None:
        session = Session(bind=connection)
        seed(session)
        session.flush()


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

    Its migrations are found from the base (``migrations/customers/``);
    ``migrations="name"`` names another history. ``inbox=Model`` (a table with
    ``mesh.inbox.InboxColumns``) is where ``@rpc(inbox=True)`` methods record
    their calls; records older than ``INBOX_RETENTION_S`` are pruned every
    ``PRUNE_INTERVAL_S`` (``mesh.retention``).
    """

    def __init__(self, declarative_base, seed=None, migrations=None, inbox=None):
        super().__init__(declarative_base)
        self.seed = seed
        self.migrations = migrations
        self.inbox = inbox

    def setup(self):
        uri = database_uri(self.container.config, self.container.service_name)
        self.engine = make_engine(uri)
        self.Session = session_factory(self.engine)
        bootstrap(self.engine, self.declarative_base.metadata, self.seed,
                  migrations=self.migrations or migrations_of(self.declarative_base))
        if self.inbox is not None:
            config = self.container.config
            self.inbox_retention_s = inbox_retention_s(config)
            self.prune_interval_s = seconds_setting(config, "PRUNE_INTERVAL_S",
                                                    DEFAULT_PRUNE_INTERVAL_S)

    def start(self):
        super().start()
        if self.inbox is not None:
            self.container.spawn_managed_thread(self._prune_inbox_forever,
                                                identifier="prune inbox")

    def _prune_inbox_forever(self):
        while True:
            self.prune_inbox()
            eventlet.sleep(self.prune_interval_s)

    def prune_inbox(self):
        """Delete the inbox records older than ``INBOX_RETENTION_S``; how many."""
        session = self.Session()
        try:
            pruned = prune_older_than(session, self.inbox.created_at, self.inbox_retention_s)
        except Exception:  # noqa: BLE001  tried again next time
            log.warning("%s: could not prune the inbox", self.container.service_name,
                        exc_info=True)
            return 0
        finally:
            session.close()
        if pruned:
            log.info("%s: pruned %d inbox record(s) older than %.0f s",
                     self.container.service_name, pruned, self.inbox_retention_s)
        return pruned

    def get_dependency(self, worker_ctx):
        deadline = worker_ctx.data.get(DEADLINE_KEY)
        db = (open_call(worker_ctx, self.inbox, partial(self.Session, info={DEADLINE_KEY: deadline}))
              or database_wrapper(self.Session, deadline))
        self.dbs[worker_ctx] = db
        return db
