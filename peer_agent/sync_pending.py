"""Remote updates that have not fully taken effect yet, kept and applied again until they have.

Yjs keeps an update whose dependencies are missing ("pending") and integrates it once they
arrive. Yrs 0.28 (pycrdt 0.14) does too, but not reliably: found by the Python ↔ JS convergence
test, with updates of one client arriving 4, 3, 2, 1, some of them stay out for good although
all arrived (applying them again brings them in); and a deletion of an item whose client the
document has never seen is dropped (y-crdt issue #582). Over an ordered channel this only
happens after a drop, and the re-sync repairs it, but the document should not depend on that.

So ``SyncDoc`` keeps every remote update that left something out and applies the kept ones again
whenever the document moves forward. "Left something out" is read from the document itself:
``get_update(update, state_vector)`` is what the update holds beyond the document's state vector:
any struct there was not integrated, and a deleted range beyond the state vector was deleted in
something the document did not have. Both byte strings come from Yrs, not from the peer.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any, Final

from pycrdt import Doc, get_update

MAX_HELD: Final = 64  # beyond, the oldest is forgotten: a re-sync by state vector brings it back


def _var_uints(data: bytes) -> Iterator[int]:
    """lib0 varuints, one after the other (Yjs update v1 and state vectors are made of them)."""
    value = shift = 0
    for byte in data:
        value |= (byte & 0x7F) << shift
        shift += 7
        if byte < 0x80:
            yield value
            value = shift = 0


def state_vector(doc: Doc[Any]) -> dict[int, int]:
    """client → next clock (Yjs encodeStateVector: count, then client and clock pairs)."""
    numbers = _var_uints(doc.get_state())
    count = next(numbers)
    return {next(numbers): next(numbers) for _ in range(count)}


def left_out(doc: Doc[Any], update: bytes) -> bool:
    """Whether part of ``update`` (applied already) has not taken effect in ``doc``."""
    known = state_vector(doc)
    rest = get_update(update, doc.get_state())
    numbers = _var_uints(rest)
    if next(numbers) != 0:  # structs of at least one client are still outside the document
        return True
    # What is left is the delete set: per client, ranges of (clock, length).
    for _ in range(next(numbers)):
        client, ranges = next(numbers), next(numbers)
        for _ in range(ranges):
            clock, length = next(numbers), next(numbers)
            if clock + length > known.get(client, 0):
                return True
    return False


class HeldUpdates:
    """The remote updates of one document that still lack something, oldest first."""

    def __init__(self, limit: int = MAX_HELD) -> None:
        self._held: list[bytes] = []
        self._limit = limit
        self._retried_at: bytes | None = None  # the state vector of the last retry

    def __len__(self) -> int:
        return len(self._held)

    def clear(self) -> None:
        self._held.clear()

    def after_apply(self, doc: Doc[Any], update: bytes, apply: Callable[[bytes], None]) -> None:
        """``update`` was just applied with ``apply``: keep it if it left something out; then, as
        long as the document moves forward, apply the kept ones again and forget the complete."""
        if left_out(doc, update):
            self._held.append(update)
            del self._held[:-self._limit]
        while self._held and (now := doc.get_state()) != self._retried_at:
            self._retried_at = now
            for held in list(self._held):
                apply(held)
            self._held = [held for held in self._held if left_out(doc, held)]
