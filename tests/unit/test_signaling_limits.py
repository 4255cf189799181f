"""Rate limits, the used-token store, TURN credentials and config checks: pure, clock injected."""

from __future__ import annotations

import base64
import hashlib
import hmac

import pytest

from signaling.config import ServerConfig
from signaling.errors import StoreFullError
from signaling.ratelimit import ConcurrencyLimit, RateLimiter, TokenBucket, client_key
from signaling.schema import ErrorCode
from signaling.store import MemoryStore
from signaling.turn import ice_servers, turn_credentials, verify_turn_password

# ---- token buckets ---------------------------------------------------------------------------


def test_bucket_allows_burst_then_refills_at_rate() -> None:
    bucket = TokenBucket.full(rate=2.0, burst=3.0, now=0.0)
    assert [bucket.take(0.0) for _ in range(4)] == [True, True, True, False]
    assert bucket.take(0.4) is False  # 0.8 tokens
    assert bucket.take(0.5) is True  # 1.0 token
    assert bucket.take(0.5) is False


def test_bucket_clock_stepping_back_mints_nothing() -> None:
    bucket = TokenBucket.full(rate=1.0, burst=1.0, now=100.0)
    assert bucket.take(100.0)
    assert not bucket.take(50.0)
    assert not bucket.take(100.5)
    assert bucket.take(101.0)


def test_limiter_keys_are_independent() -> None:
    limiter: RateLimiter[str] = RateLimiter.per_minute(2)
    assert limiter.allow("a", 0) and limiter.allow("a", 0)
    assert not limiter.allow("a", 0)
    assert limiter.allow("b", 0)
    assert limiter.allow("a", 30.0)  # one token back after half a minute


def test_limiter_memory_is_bounded_and_idle_keys_go_first() -> None:
    limiter: RateLimiter[int] = RateLimiter(rate=1.0, burst=1.0, max_keys=100)
    for key in range(10_000):
        limiter.allow(key, float(key) / 1000)
        assert len(limiter) <= 100
    # Keys busy right now keep their state: the newest key is still exhausted.
    assert not limiter.allow(9_999, 9.999)


def test_limiter_sweeps_idle_keys_as_new_ones_arrive() -> None:
    limiter: RateLimiter[int] = RateLimiter(rate=1.0, burst=1.0, max_keys=1000)
    for key in range(50):
        limiter.allow(key, 0.0)
    for key in range(50, 100):
        limiter.allow(key, 10.0)  # the first 50 have refilled: swept two per new key
    assert len(limiter) == 50


def test_concurrency_limit() -> None:
    limit: ConcurrencyLimit[str] = ConcurrencyLimit(2)
    assert limit.acquire("ip") and limit.acquire("ip")
    assert not limit.acquire("ip")
    assert limit.acquire("other")
    limit.release("ip")
    assert limit.acquire("ip")
    for _ in range(3):
        limit.release("ip")
    assert limit.count("ip") == 0


@pytest.mark.parametrize(
    ("host", "key"),
    [
        ("127.0.0.2", "127.0.0.2"),
        ("2001:db8:1:2:aaaa::1", "2001:db8:1:2::/64"),
        ("2001:db8:1:2:bbbb::9", "2001:db8:1:2::/64"),
        ("::ffff:192.0.2.7", "192.0.2.7"),
        ("fe80::1%eth0", "fe80::/64"),
        ("unknown", "unknown"),
    ],
)
def test_client_key(host: str, key: str) -> None:
    assert client_key(host) == key


# ---- used-token store ------------------------------------------------------------------------


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


async def test_use_once_first_true_then_false_until_expiry() -> None:
    clock = Clock()
    store = MemoryStore(clock=clock)
    assert await store.use_once(b"t1", ttl=10)
    assert not await store.use_once(b"t1", ttl=10)
    assert await store.use_once(b"t2", ttl=10)
    clock.now += 9.9
    assert not await store.use_once(b"t1", ttl=10)
    clock.now += 0.2
    assert len(store) == 0  # both evicted
    assert await store.use_once(b"t1", ttl=10)
    await store.close()
    await store.close()  # idempotent


async def test_store_full_of_live_keys_fails_closed() -> None:
    clock = Clock()
    store = MemoryStore(max_keys=3, clock=clock)
    for key in (b"a", b"b", b"c"):
        assert await store.use_once(key, ttl=5)
    with pytest.raises(StoreFullError) as exc:
        await store.use_once(b"d", ttl=5)
    assert exc.value.code is ErrorCode.RATE_LIMITED
    assert not await store.use_once(b"a", ttl=5)  # a known key is still answered
    clock.now += 5
    assert await store.use_once(b"d", ttl=5)  # expired keys made room


# ---- TURN REST credentials -------------------------------------------------------------------


def test_turn_credentials_are_coturn_rest_credentials() -> None:
    creds = turn_credentials("s3cret", now=1_700_000_000.2, ttl=3600, user_id="abc")
    assert creds.username == "1700003601:abc"
    expected = base64.b64encode(
        hmac.new(b"s3cret", b"1700003601:abc", hashlib.sha1).digest()
    ).decode()
    assert creds.password == expected
    assert verify_turn_password("s3cret", creds.username, creds.password, now=1_700_000_000)
    assert not verify_turn_password("other", creds.username, creds.password, now=1_700_000_000)
    assert not verify_turn_password("s3cret", creds.username, creds.password, now=1_700_003_601)
    with pytest.raises(ValueError):
        turn_credentials("s", 0, 1, "a:b")


def test_ice_servers_stun_plain_turn_with_fresh_credentials() -> None:
    assert ice_servers(ServerConfig(), now=0) == []
    config = ServerConfig(
        stun_urls=("stun:198.51.100.1:3478",),
        turn_urls=("turn:198.51.100.1:3478?transport=udp", "turns:198.51.100.1:5349"),
        turn_secret="k",
        turn_ttl=600,
    )
    stun, turn = ice_servers(config, now=100.0)
    assert (
        stun.urls == ["stun:198.51.100.1:3478"] and stun.username is None and stun.credential is None
    )
    assert turn.urls == list(config.turn_urls)
    assert turn.username is not None and turn.credential is not None
    assert int(turn.username.split(":")[0]) == 700
    assert verify_turn_password("k", turn.username, turn.credential, now=100.0)
    again = ice_servers(config, now=100.0)[1]
    assert again.username != turn.username  # a fresh id each time


# ---- config ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "bad",
    [
        {"keepalive": 11.0},
        {"auth_deadline": 0},
        {"port": 70000},
        {"max_protocol_errors": 0},
        {"turn_urls": ("turn:198.51.100.1",)},
        {"token_keys": {1: b"k" * 32}, "token_kid": 2},
    ],
)
def test_config_rejects_unsafe_values(bad: dict[str, object]) -> None:
    with pytest.raises(ValueError):
        ServerConfig(**bad)  # type: ignore[arg-type]
