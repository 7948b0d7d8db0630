"""mesh.retention: what is pruned, what never is, when, and the settings' floor."""
import datetime

import pytest
from sqlalchemy import Integer, create_engine, func, select
from sqlalchemy.orm import DeclarativeBase, Mapped, Session, mapped_column

from common.columns import UtcDateTime
from contracts.wire import utc_now
from common.config import seconds_setting
from mesh.retention import Schedule, inbox_retention_s, prune_older_than


class Base(DeclarativeBase):
    pass


class Row(Base):
    __tablename__ = "rows"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    done_at: Mapped[datetime.datetime] = mapped_column(UtcDateTime, nullable=True)


@pytest.fixture
def session():
    engine = create_engine("sqlite://")
    Base.metadata.create_all(engine)
    with Session(engine) as session:
        yield session


def ages(session):
    return sorted(row.id for row in session.scalars(select(Row)))


def test_prunes_rows_older_than_the_retention_and_keeps_the_rest(session):
    now = utc_now()
    session.add_all([Row(id=n, done_at=now - datetime.timedelta(seconds=age))
                     for n, age in [(1, 7200), (2, 3700), (3, 3500), (4, 10)]])
    session.add(Row(id=5, done_at=None))  # not done: never older than anything
    session.commit()
    assert prune_older_than(session, Row.done_at, 3600) == 2
    assert ages(session) == [3, 4, 5]
    assert prune_older_than(session, Row.done_at, 3600) == 0


def test_prunes_in_batches_until_none_is_left(session):
    old = utc_now() - datetime.timedelta(days=2)
    session.add_all([Row(id=n, done_at=old) for n in range(1, 2502)])
    session.commit()
    assert prune_older_than(session, Row.done_at, 60, batch=1000) == 2501
    assert session.scalar(select(func.count()).select_from(Row)) == 0


def test_a_schedule_is_due_at_once_then_once_per_interval():
    now = [100.0]
    schedule = Schedule(60, clock=lambda: now[0])
    assert schedule.due()
    now[0] = 159.0
    assert not schedule.due()
    now[0] = 160.0
    assert schedule.due()
    assert not schedule.due()


def test_settings_are_positive_seconds_and_the_inbox_outlives_rpc_timeout():
    assert seconds_setting({}, "PRUNE_INTERVAL_S", 60) == 60.0
    assert seconds_setting({"PRUNE_INTERVAL_S": "0.5"}, "PRUNE_INTERVAL_S", 60) == 0.5
    with pytest.raises(ValueError, match="PRUNE_INTERVAL_S"):
        seconds_setting({"PRUNE_INTERVAL_S": 0}, "PRUNE_INTERVAL_S", 60)
    assert inbox_retention_s({"RPC_TIMEOUT": 5}) == 3600.0
    assert inbox_retention_s({"RPC_TIMEOUT": 5, "INBOX_RETENTION_S": 5}) == 5.0
    # shorter than a caller waits: a redelivery inside the deadline would run again
    with pytest.raises(ValueError, match="INBOX_RETENTION_S must be at least 5"):
        inbox_retention_s({"RPC_TIMEOUT": 5, "INBOX_RETENTION_S": 4})
