"""``common.rate_limit.TokenBuckets`` on a clock the test moves."""
import pytest

from common import rate_limit
from common.rate_limit import TokenBuckets
from helpers import Clock


@pytest.fixture
def clock():
    return Clock()


def test_a_burst_passes_then_the_next_waits_for_its_token(clock):
    buckets = TokenBuckets(rate=2, burst=3, clock=clock)
    assert [buckets.take("alice") for _ in range(3)] == [0.0, 0.0, 0.0]
    assert buckets.take("alice") == pytest.approx(0.5)  # 2 a second: one every 0.5 s
    clock.now += 0.25
    assert buckets.take("alice") == pytest.approx(0.25)  # a refusal takes nothing
    clock.now += 0.25
    assert buckets.take("alice") == 0.0
    assert buckets.take("alice") > 0


def test_each_key_has_its_own_bucket(clock):
    buckets = TokenBuckets(rate=1, burst=1, clock=clock)
    assert buckets.take("alice") == 0.0
    assert buckets.take("alice") > 0
    assert buckets.take("bob") == 0.0


def test_a_bucket_refills_to_its_burst_and_no_more(clock):
    buckets = TokenBuckets(rate=10, burst=2, clock=clock)
    buckets.take("alice")
    clock.now += 3600
    assert [buckets.take("alice") for _ in range(3)] == [0.0, 0.0, pytest.approx(0.1)]


def test_a_rate_of_zero_is_no_limit(clock):
    buckets = TokenBuckets(rate=0, burst=1, clock=clock)
    assert not buckets.on
    assert all(buckets.take("alice") == 0.0 for _ in range(1000))


def test_idle_clients_are_forgotten_first_when_too_many_are_kept(clock, monkeypatch):
    monkeypatch.setattr(rate_limit, "MAX_CLIENTS", 3)
    buckets = TokenBuckets(rate=1, burst=5, clock=clock)
    for key in ("a", "b", "c"):
        buckets.take(key)
    for _ in range(4):
        buckets.take("c")  # c empties its bucket
    clock.now += 2  # a and b are full again, c is not
    buckets.take("d")
    assert set(buckets.buckets) == {"c", "d"}
    # c's state kept: the two tokens it earned since, then none
    assert [buckets.take("c") for _ in range(3)] == [0.0, 0.0, pytest.approx(1.0)]
