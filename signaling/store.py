"""Shared server state that must outlive a single connection: the ledger of used token ids.

``Store`` is the interface; ``MemoryStore`` serves one process. A Redis store for many nodes
(DESIGN "Scale") implements ``use_once`` as ``SET key 1 NX PX ttl_ms`` — atomic across nodes,
and Redis expires the key by itself; ``seen`` (a read-only look, for ``pair.peek``) is ``EXISTS``.
"""

from __future__ import annotations

import heapq
import time
from collections.abc import Callable
from typing import Protocol

from .errors import StoreFullError


class Store(Protocol):
    async def use_once(self, key: bytes, ttl: float) -> bool:
        """True the first time ``key`` is used within ``ttl`` seconds, False on every later use.

        Raises :class:`StoreFullError` when it cannot remember one more key: forgetting a live
        key would let a token be used twice, so a full store fails closed.
        """
        ...

    async def seen(self, key: bytes) -> bool:
        """Whether ``key`` was used and has not expired yet; never records it (``EXISTS``)."""
        ...

    async def close(self) -> None: ...


class MemoryStore:
    """In-process ledger with expiry, bounded to ``max_keys`` live entries.

    ``clock`` is any monotonic clock in seconds (injectable for tests). Expired keys are evicted
    in order of expiry through a heap, so each call costs O(log n) amortised.
    """

    def __init__(
        self, max_keys: int = 100_000, clock: Callable[[], float] = time.monotonic
    ) -> None:
        if max_keys < 1:
            raise ValueError("max_keys must be at least 1")
        self.max_keys = max_keys
        self._clock = clock
        self._expiry: dict[bytes, float] = {}
        self._heap: list[tuple[float, bytes]] = []
        self._closed = False

    def __len__(self) -> int:
        self._evict(self._clock())
        return len(self._expiry)

    async def use_once(self, key: bytes, ttl: float) -> bool:
        if self._closed:
            raise RuntimeError("store is closed")
        now = self._clock()
        self._evict(now)
        if key in self._expiry:
            return False
        if len(self._expiry) >= self.max_keys:
            raise StoreFullError()
        # A zero or negative ttl would make the key unusable and free at once: still record it
        # for an instant so the *first* answer stays True and the contract holds.
        expires_at = now + max(ttl, 0.0)
        self._expiry[key] = expires_at
        heapq.heappush(self._heap, (expires_at, key))
        return True

    async def seen(self, key: bytes) -> bool:
        if self._closed:
            raise RuntimeError("store is closed")
        self._evict(self._clock())
        return key in self._expiry

    async def close(self) -> None:
        self._closed = True
        self._expiry.clear()
        self._heap.clear()

    def _evict(self, now: float) -> None:
        heap = self._heap
        while heap and heap[0][0] <= now:
            expires_at, key = heapq.heappop(heap)
            # Each key is pushed once per life, so the heap entry is the live one unless the key
            # expired and was used again (a later entry then holds its new expiry).
            if self._expiry.get(key) == expires_at:
                del self._expiry[key]
