"""Rate and concurrency limits, pure: callers pass ``now`` (any monotonic seconds).

A token bucket (capacity ``burst``, refilled at ``rate`` per second) per key, usually a client
IP. Memory is bounded: a bucket that has refilled completely says nothing a fresh bucket would
not, so idle buckets are swept as new keys arrive; past ``max_keys`` the least recently used key
is dropped (it then gets a fresh burst, the price of bounded memory under an attack from many
addresses).
"""

from __future__ import annotations

import ipaddress
from collections import OrderedDict
from collections.abc import Hashable
from dataclasses import dataclass
from typing import Generic, TypeVar

K = TypeVar("K", bound=Hashable)


def client_key(host: str) -> str:
    """The key a client is limited under: its IPv4 address, or its IPv6 /64.

    One IPv6 subscriber commonly holds a whole /64 (RFC 6177), so limiting single IPv6
    addresses would hand every client 2**64 fresh buckets. IPv4-mapped IPv6 counts as IPv4.
    """
    try:
        address = ipaddress.ip_address(host.split("%", 1)[0])
    except ValueError:
        return host
    if isinstance(address, ipaddress.IPv6Address):
        if address.ipv4_mapped is not None:
            return str(address.ipv4_mapped)
        return str(ipaddress.IPv6Network((address, 64), strict=False))
    return str(address)


@dataclass
class TokenBucket:
    """One bucket. ``tokens`` may be fractional; a request takes one whole token."""

    rate: float
    burst: float
    tokens: float
    updated: float

    @classmethod
    def full(cls, rate: float, burst: float, now: float) -> TokenBucket:
        return cls(rate=rate, burst=burst, tokens=burst, updated=now)

    def refill(self, now: float) -> None:
        # A clock that steps back must not mint tokens; max() keeps ``updated`` monotonic.
        elapsed = max(0.0, now - self.updated)
        self.tokens = min(self.burst, self.tokens + elapsed * self.rate)
        self.updated = max(self.updated, now)

    def take(self, now: float) -> bool:
        self.refill(now)
        if self.tokens >= 1.0:
            self.tokens -= 1.0
            return True
        return False

    def idle(self, now: float) -> bool:
        """True when the bucket would be full at ``now``: forgetting it changes nothing."""
        return self.tokens + max(0.0, now - self.updated) * self.rate >= self.burst


class RateLimiter(Generic[K]):
    """Token buckets keyed by ``K``: ``allow(key, now)`` spends one token or refuses."""

    def __init__(self, rate: float, burst: float, max_keys: int = 65_536) -> None:
        if not rate > 0 or not burst >= 1 or max_keys < 1:
            raise ValueError("rate > 0, burst >= 1 and max_keys >= 1 are required")
        self.rate = rate
        self.burst = burst
        self.max_keys = max_keys
        self._buckets: OrderedDict[K, TokenBucket] = OrderedDict()

    @classmethod
    def per_minute(cls, amount: float, max_keys: int = 65_536) -> RateLimiter[K]:
        """``amount`` requests a minute, all of which may come at once."""
        return cls(rate=amount / 60.0, burst=max(1.0, amount), max_keys=max_keys)

    def __len__(self) -> int:
        return len(self._buckets)

    def allow(self, key: K, now: float) -> bool:
        bucket = self._buckets.get(key)
        if bucket is None:
            self._make_room(now)
            bucket = TokenBucket.full(self.rate, self.burst, now)
            self._buckets[key] = bucket
        else:
            self._buckets.move_to_end(key)
        return bucket.take(now)

    def forget(self, key: K) -> None:
        self._buckets.pop(key, None)

    def _make_room(self, now: float) -> None:
        # Amortised sweep: the least recently used buckets are the likeliest to have refilled;
        # dropping two idle ones per new key keeps memory shrinking without a full scan.
        for _ in range(2):
            if not self._buckets:
                break
            oldest_key, oldest = next(iter(self._buckets.items()))
            if not oldest.idle(now):
                break
            del self._buckets[oldest_key]
        while len(self._buckets) >= self.max_keys:
            self._buckets.popitem(last=False)


class ConcurrencyLimit(Generic[K]):
    """At most ``limit`` simultaneous holders per key; keys with no holder take no memory."""

    def __init__(self, limit: int) -> None:
        if limit < 1:
            raise ValueError("limit must be at least 1")
        self.limit = limit
        self._held: dict[K, int] = {}

    def count(self, key: K) -> int:
        return self._held.get(key, 0)

    def acquire(self, key: K) -> bool:
        held = self._held.get(key, 0)
        if held >= self.limit:
            return False
        self._held[key] = held + 1
        return True

    def release(self, key: K) -> None:
        held = self._held.get(key, 0)
        if held <= 1:
            self._held.pop(key, None)
        else:
            self._held[key] = held - 1
