"""Rate limits and de-duplication, on real Redis and in memory, and how they fail open when
Redis is dead, dies mid-run, or stops answering. (The in-memory windows on a frozen clock are
tests/unit/test_limits_in_memory.py's.)"""

from __future__ import annotations

import logging
import shutil
import subprocess
import threading
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor

import pytest
import redis
from helpers import make_settings, service_missing

from bot.core.metrics import REGISTRY
from bot.domain.limits import Allowed, Deduplicator, RateLimited, RateLimiter
from testkit.fakes.tcp_proxy import silent_server
from testkit.processes import free_port

# One fail-open check may cost at most this much (one connect plus one read timeout).
FAIL_OPEN_BUDGET = 0.25


def counter(name: str, **labels: str) -> float:
    return REGISTRY.get_sample_value(name, labels) or 0.0


def fail_opens(operation: str) -> float:
    return counter("coldcopy_redis_fail_open_total", operation=operation)


def denials(scope: str) -> float:
    return counter("coldcopy_rate_limit_denials_total", scope=scope)


def simultaneously(n: int, action: Callable[[int], object]) -> list:
    """Run `action(i)` for i in range(n) on n threads released at the same instant."""
    start = threading.Barrier(n)

    def run(i: int) -> object:
        start.wait()
        return action(i)

    with ThreadPoolExecutor(max_workers=n) as pool:
        return list(pool.map(run, range(n)))


@pytest.fixture(params=[pytest.param("redis", marks=pytest.mark.redis), "memory"])
def backend(request) -> str | None:
    """The Redis URL, or None for the embedded in-memory mode; each test runs on both."""
    if request.param == "redis":
        return request.getfixturevalue("redis_url")
    return None


@pytest.fixture
def limiter_for(backend) -> Callable[..., RateLimiter]:
    def build(user_rate: str = "2/minute", workspace_rate: str = "30/hour") -> RateLimiter:
        settings = make_settings(
            redis_url=backend, user_rate=user_rate, workspace_rate=workspace_rate
        )
        return RateLimiter.from_settings(settings)

    return build


@pytest.fixture
def dedup(backend) -> Deduplicator:
    return Deduplicator.from_settings(make_settings(redis_url=backend))


class SpareRedis:
    """A second redis-server of our own on a free port, to kill and bring back during a test."""

    def __init__(self, workdir):
        self.port = free_port()
        self.workdir = workdir
        self.url = f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> None:
        subprocess.run(
            ["redis-server", "--port", str(self.port), "--bind", "127.0.0.1", "--save", "",
             "--appendonly", "no", "--daemonize", "yes", "--dir", str(self.workdir),
             "--logfile", str(self.workdir / "redis.log")],
            check=True,
        )  # fmt: skip
        client = redis.Redis(port=self.port, socket_timeout=0.5, retry=None)
        for _ in range(100):
            try:
                client.ping()
                break
            except redis.ConnectionError:
                time.sleep(0.02)
        client.close()

    def stop(self) -> None:
        subprocess.run(
            ["redis-cli", "-p", str(self.port), "shutdown", "nosave"],
            capture_output=True,
            check=False,
        )
        probe = redis.Redis(port=self.port, socket_timeout=0.2, retry=None)
        for _ in range(100):
            try:
                probe.ping()
                time.sleep(0.02)
            except redis.ConnectionError:
                return


@pytest.fixture
def spare_redis(tmp_path) -> Iterator[SpareRedis]:
    if shutil.which("redis-server") is None or shutil.which("redis-cli") is None:
        service_missing("redis-server", FileNotFoundError("redis-server or redis-cli"))
    server = SpareRedis(tmp_path)
    server.start()
    yield server
    server.stop()


@pytest.fixture
def silent_redis() -> Iterator[str]:
    """A Redis URL whose server accepts connections and never answers: Redis hung or overloaded."""
    with silent_server() as port:
        yield f"redis://127.0.0.1:{port}/0"


# --- rate limits ----------------------------------------------------------------------------


def test_a_user_gets_their_rate_then_a_wait_taken_from_the_real_window(limiter_for):
    limiter = limiter_for(user_rate="2/minute")
    before = denials("user")

    assert limiter.check("T1", "U1") == Allowed()
    time.sleep(0.3)
    assert limiter.check("T1", "U1") == Allowed()
    limited = limiter.check("T1", "U1")

    assert isinstance(limited, RateLimited)
    assert limited.scope == "user"
    assert limited.limit == "2 per 1 minute"
    # The first hit leaves the window 60 s after it was made, about 0.3 s ago.
    assert 59.0 < limited.retry_after < 59.75
    assert limited.minutes == 1
    assert denials("user") == before + 1
    # Another user of the same workspace is not affected.
    assert limiter.check("T1", "U2") == Allowed()


def test_the_moving_window_frees_a_slot_when_the_oldest_hit_leaves(limiter_for):
    limiter = limiter_for(user_rate="2/second")

    assert limiter.check("T1", "U1") == Allowed()
    time.sleep(0.4)
    assert limiter.check("T1", "U1") == Allowed()
    first = limiter.check("T1", "U1")
    assert isinstance(first, RateLimited)
    assert 0.4 < first.retry_after <= 0.62

    time.sleep(first.retry_after + 0.05)
    assert limiter.check("T1", "U1") == Allowed()  # the first hit left; the second is still in
    second = limiter.check("T1", "U1")
    assert isinstance(second, RateLimited)
    assert 0.2 < second.retry_after <= 0.4


def test_a_workspace_limit_counts_every_user_of_that_workspace_only(limiter_for):
    limiter = limiter_for(user_rate="2/minute", workspace_rate="3/hour")
    before = denials("workspace")

    assert limiter.check("T1", "U1") == Allowed()
    assert limiter.check("T1", "U1") == Allowed()
    assert limiter.check("T1", "U2") == Allowed()
    limited = limiter.check("T1", "U3")

    assert isinstance(limited, RateLimited)
    assert limited.scope == "workspace"
    assert limited.limit == "3 per 1 hour"
    assert 3500 < limited.retry_after <= 3600
    assert limited.minutes == 60
    assert denials("workspace") == before + 1
    assert limiter.check("T2", "U3") == Allowed()


def test_a_user_over_their_limit_does_not_use_up_the_workspace(limiter_for):
    limiter = limiter_for(user_rate="1/minute", workspace_rate="2/minute")

    assert limiter.check("T1", "U1") == Allowed()
    for _ in range(5):
        assert limiter.check("T1", "U1").scope == "user"
    # Had U1's denials taken workspace slots, U2 would be refused here.
    assert limiter.check("T1", "U2") == Allowed()
    assert limiter.check("T1", "U3").scope == "workspace"


def test_a_full_workspace_does_not_use_up_the_users_own_limit(limiter_for):
    limiter = limiter_for(user_rate="1/minute", workspace_rate="1/second")

    assert limiter.check("T1", "U1") == Allowed()
    refused = limiter.check("T1", "U2")
    assert isinstance(refused, RateLimited)
    assert refused.scope == "workspace"

    time.sleep(refused.retry_after + 0.05)
    # U2's one-per-minute slot was not spent on the refusal.
    assert limiter.check("T1", "U2") == Allowed()
    assert limiter.check("T1", "U2").scope == "user"


def test_when_both_limits_are_full_the_longer_wait_is_shown(limiter_for):
    limiter = limiter_for(user_rate="1/minute", workspace_rate="1/hour")
    assert limiter.check("T1", "U1") == Allowed()

    limited = limiter.check("T1", "U1")

    assert isinstance(limited, RateLimited)
    assert limited.scope == "workspace"
    assert limited.minutes == 60


def test_several_limits_in_one_setting_all_hold(limiter_for):
    limiter = limiter_for(user_rate="3/minute;4/hour")
    assert [limiter.check("T1", "U1") for _ in range(3)] == [Allowed()] * 3

    limited = limiter.check("T1", "U1")

    assert limited.limit == "3 per 1 minute"
    assert limited.minutes == 1


def test_twenty_simultaneous_checks_of_one_user_allow_exactly_five(limiter_for):
    limiter = limiter_for(user_rate="5/minute", workspace_rate="6/hour")

    results = simultaneously(20, lambda _: limiter.check("T1", "U1"))

    assert results.count(Allowed()) == 5
    assert {r.scope for r in results if isinstance(r, RateLimited)} == {"user"}
    # Only the five allowed checks took workspace slots: one is left of six.
    assert limiter.check("T1", "U2") == Allowed()
    assert limiter.check("T1", "U3").scope == "workspace"


def test_twenty_simultaneous_checks_of_one_workspace_allow_exactly_five(limiter_for):
    limiter = limiter_for(user_rate="2/minute", workspace_rate="5/minute")

    results = simultaneously(20, lambda i: limiter.check("T1", f"U{i}"))

    assert results.count(Allowed()) == 5
    assert {r.scope for r in results if isinstance(r, RateLimited)} == {"workspace"}


def test_many_users_at_once_fill_the_workspace_exactly_and_denials_take_no_slot(
    limiter_for, backend
):
    """Both scopes are taken together or not at all: a request denied by the workspace
    limit never spends the user's slot, whatever the interleaving."""
    limiter = limiter_for(user_rate="4/minute", workspace_rate="15/minute")

    results = simultaneously(60, lambda i: (f"U{i % 6}", limiter.check("T1", f"U{i % 6}")))

    allowed = [user for user, result in results if result == Allowed()]
    assert len(allowed) == 15
    assert all(allowed.count(f"U{n}") <= 4 for n in range(6))
    if backend is None:
        return  # in memory the windows live in the limiter itself; the rest reads Redis
    # Each user holds exactly the slots their allowed checks took: seen from a second replica
    # whose workspace limit is not in the way, a user with k allowed checks gets 4 - k more.
    other = limiter_for(user_rate="4/minute", workspace_rate="1000/minute")
    for n in range(6):
        taken = allowed.count(f"U{n}")
        more = [other.check("T1", f"U{n}") for _ in range(5)]
        assert more.count(Allowed()) == 4 - taken


def test_every_key_the_app_creates_in_redis_expires(redis_url):
    settings = make_settings(redis_url=redis_url, user_rate="1/minute;5/hour")
    limiter = RateLimiter.from_settings(settings)
    dedup = Deduplicator.from_settings(settings)
    for team in ("T1", "T2"):
        for user in ("U1", "U2"):
            limiter.check(team, user)
            limiter.check(team, user)  # a denial too
    dedup.first_time("view:V1", 300)
    dedup.first_time("view:V1", 300)
    dedup.first_time("event:Ev1", 60)

    client = redis.Redis.from_url(redis_url)
    keys = list(client.scan_iter(count=1000))
    assert len(keys) >= 4 * 2 + 2 * 1 + 2  # user windows, workspace windows, dedup keys
    for key in keys:
        assert key.startswith((b"coldcopy:limits:", b"coldcopy:dedup:")), key
        assert 0 < client.ttl(key) <= 3600, key
    assert client.ttl("coldcopy:dedup:view:V1") <= 300
    client.close()


def test_ping_answers_on_live_redis_and_in_memory(backend):
    settings = make_settings(redis_url=backend)
    assert RateLimiter.from_settings(settings).ping() is True
    assert Deduplicator.from_settings(settings).ping() is True


# --- de-duplication -------------------------------------------------------------------------


def test_a_key_is_new_once_then_a_duplicate(dedup):
    assert dedup.first_time("view:V1", 60) is True
    assert dedup.first_time("view:V1", 60) is False
    assert dedup.first_time("view:V2", 60) is True
    assert dedup.first_time("event:V1", 60) is True


def test_a_key_is_new_again_after_its_ttl(dedup):
    assert dedup.first_time("event:Ev1", 1) is True
    assert dedup.first_time("event:Ev1", 1) is False
    time.sleep(1.1)
    assert dedup.first_time("event:Ev1", 1) is True


def test_twenty_simultaneous_deliveries_are_new_exactly_once(dedup):
    results = simultaneously(20, lambda _: dedup.first_time("view:V9", 60))
    assert results.count(True) == 1


def test_a_ttl_must_be_a_positive_whole_number(dedup):
    for ttl in (0, -1, 1.5):
        with pytest.raises(ValueError, match="ttl_seconds"):
            dedup.first_time("view:V1", ttl)


# --- failing open ---------------------------------------------------------------------------


def assert_fails_open_quickly(limiter: RateLimiter, dedup: Deduplicator, caplog) -> None:
    caplog.set_level(logging.WARNING, logger="bot.domain.limits")
    rate_before, dedup_before = fail_opens("rate_limit"), fail_opens("dedup")
    denials_before = denials("user") + denials("workspace")

    for _ in range(3):  # more than the 1/minute limit: nothing may be refused
        caplog.clear()
        started = time.perf_counter()
        assert limiter.check("T1", "U1") == Allowed(failed_open=True)
        assert time.perf_counter() - started < FAIL_OPEN_BUDGET
        assert len(caplog.records) == 1, "one warning per failure"
        assert "fail open" in caplog.records[0].getMessage()
        assert "Error" in caplog.records[0].getMessage()  # names the redis error

    for _ in range(2):  # the same key twice: never a duplicate
        caplog.clear()
        started = time.perf_counter()
        assert dedup.first_time("view:V1", 60) is True
        assert time.perf_counter() - started < FAIL_OPEN_BUDGET
        assert len(caplog.records) == 1

    assert fail_opens("rate_limit") == rate_before + 3
    assert fail_opens("dedup") == dedup_before + 2
    assert denials("user") + denials("workspace") == denials_before
    assert limiter.ping() is False
    assert dedup.ping() is False


def test_redis_dead_from_the_start_fails_open(caplog):
    settings = make_settings(redis_url=f"redis://127.0.0.1:{free_port()}/0", user_rate="1/minute")
    limiter = RateLimiter.from_settings(settings)
    dedup = Deduplicator.from_settings(settings)

    assert_fails_open_quickly(limiter, dedup, caplog)


def test_redis_that_stops_answering_fails_open_within_the_budget(silent_redis, caplog):
    settings = make_settings(redis_url=silent_redis, user_rate="1/minute")
    limiter = RateLimiter.from_settings(settings)
    dedup = Deduplicator.from_settings(settings)

    assert_fails_open_quickly(limiter, dedup, caplog)
    assert "Timeout" in caplog.records[0].getMessage()


def test_redis_dying_mid_run_fails_open_and_limits_again_when_back(spare_redis, caplog):
    settings = make_settings(redis_url=spare_redis.url, user_rate="1/minute")
    limiter = RateLimiter.from_settings(settings)
    dedup = Deduplicator.from_settings(settings)
    assert limiter.check("T1", "U1") == Allowed()
    assert limiter.check("T1", "U1").scope == "user"
    assert dedup.first_time("view:V1", 60) is True
    assert dedup.first_time("view:V1", 60) is False

    spare_redis.stop()

    assert_fails_open_quickly(limiter, dedup, caplog)

    spare_redis.start()  # empty: nothing was saved

    assert limiter.ping() is True
    assert limiter.check("T1", "U1") == Allowed()
    assert limiter.check("T1", "U1").scope == "user"
    assert dedup.first_time("view:V1", 60) is True
    assert dedup.first_time("view:V1", 60) is False
