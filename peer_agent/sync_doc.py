"""The shared page document of docs/SYNC.md: one pycrdt ``Doc``, its operations, its state.

Pure: no I/O, no clock. The same layout and operations live in
``browser_client/app/core/sync_doc.js`` (yjs); both write Yjs update v1, so the two converge.

API (the asyncio shell, ``peer_agent/syncing.py``, builds on it)::

    doc = SyncDoc(gc=True, state=None, client_id=None)  # state: a full state from encode()
    doc.open_tab(key, url, title, order, by)            # ... every operation of docs/SYNC.md,
                                                        # one transaction each; SyncError(BAD_MESSAGE)
                                                        # on a bad argument, the doc untouched
    doc.state() -> dict                                 # plain JSON, only entries of the right shape
    doc.apply_update(update)                            # remote change; SyncError(BAD_UPDATE)
    doc.incomplete -> bool                              # a remote update waits for what it builds on
    doc.forget_incomplete()                             # after the peer's step 2: stop waiting
    doc.encode(state_vector=None) -> bytes              # full state, or the diff for that vector
    doc.state_vector() -> bytes
    doc.on_local_update(cb)                             # cb(update) after each local transaction
    doc.on_change(cb)                                   # cb(local) after each change, local or remote
    doc.doc                                             # the pycrdt.Doc

SyncError (a PeerbeamError: ``code`` from signaling.schema.ErrorCode, ``message`` for people,
``remote``) is the one error of page sync; sync_wire raises it too.

Callbacks run after the transaction has committed (never inside pycrdt's observer), so they
may call operations themselves; each registration returns a function that removes it.

Entries are checked against ``sync_shapes`` (the same rules as sync_doc.js): ``state()``
leaves out whatever does not fit, so a hostile peer's junk never reaches the tab or the view.
Numbers are stored as floats and read back as floats (pycrdt reads every yjs number so).
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from typing import Any, Final, Literal

from pycrdt import Doc, Map, TransactionEvent

from signaling.schema import ErrorCode

from .errors import PeerbeamError
from .sync_pending import HeldUpdates
from .sync_shapes import (
    FOLLOW_DIRECTIONS,
    KEYS,
    RECORDS,
    ROOTS,
    VALUES,
    Check,
    Json,
    fit,
    is_bool,
    tab_key,
)

logger = logging.getLogger(__name__)


class SyncError(PeerbeamError):
    """The shared page document refused a change."""

    code = ErrorCode.BAD_MESSAGE

    def __init__(self, code: ErrorCode, message: str) -> None:
        super().__init__(message, code=code)
        # Updates and sync messages come from the other device; bad op arguments from here.
        self.remote = code in (ErrorCode.BAD_UPDATE, ErrorCode.UNKNOWN_DOC, ErrorCode.UPDATE_TOO_LARGE)


def _require(fields: Mapping[str, Check], **args: object) -> None:
    for name, value in args.items():
        if not fields[name](value):
            raise SyncError(ErrorCode.BAD_MESSAGE, f"The value of {name!r} does not fit docs/SYNC.md.")


def _require_key(root: str, key: object) -> None:
    if not KEYS[root](key):
        raise SyncError(ErrorCode.BAD_MESSAGE, f"That is not a valid key of {root!r}.")


EMPTY_UPDATE: Final = b"\x00\x00"  # no structs, no deletions: what an idle sync step 2 carries


def _rust_refused(exc: BaseException) -> bool:
    """pycrdt raises ValueError / RuntimeError for updates it cannot read, and pyo3's
    PanicException (a BaseException, not importable by name) when Yrs panics on one."""
    return isinstance(exc, (ValueError, RuntimeError)) or type(exc).__name__ == "PanicException"


# ---- the document -----------------------------------------------------------------------------


class SyncDoc:
    """One shared page document. See the module docstring for the API and the shapes."""

    def __init__(self, gc: bool = True, state: bytes | None = None, *, client_id: int | None = None) -> None:
        self._skip_gc = not gc
        self.doc: Doc[Any] = Doc(skip_gc=self._skip_gc, client_id=client_id)
        self._roots: dict[str, Map[Any]] = {name: self.doc.get(name, type=Map) for name in ROOTS}
        self._local = True
        self._pending: list[tuple[bytes, bool]] = []
        self._update_callbacks: list[Callable[[bytes], None]] = []
        self._change_callbacks: list[Callable[[bool], None]] = []
        self._scroll_n: dict[str, float] = {}
        self._held = HeldUpdates()
        self.doc.observe(self._observed)
        if state is not None:
            self.apply_update(state)

    # -- change notification

    def on_local_update(self, callback: Callable[[bytes], None]) -> Callable[[], None]:
        self._update_callbacks.append(callback)
        return lambda: self._update_callbacks.remove(callback)

    def on_change(self, callback: Callable[[bool], None]) -> Callable[[], None]:
        self._change_callbacks.append(callback)
        return lambda: self._change_callbacks.remove(callback)

    def _observed(self, event: TransactionEvent) -> None:
        # Called by pycrdt while committing: only note it; callbacks run once the commit is over.
        self._pending.append((event.update, self._local))

    @contextmanager
    def _transact(self, *, local: bool) -> Iterator[None]:
        self._local = local
        try:
            with self.doc.transaction():
                yield
        finally:
            # Also after a failed body: what pycrdt committed anyway is a change to report.
            self._local = True
            pending, self._pending = self._pending, []
            for update, was_local in pending:
                if was_local:
                    for on_update in list(self._update_callbacks):
                        on_update(update)
                for on_change in list(self._change_callbacks):
                    on_change(was_local)

    # -- encoding

    def apply_update(self, update: bytes) -> None:
        """Apply a remote update (Yjs update v1). Changes it brings are reported as remote.

        A crafted update can make Yrs panic half-way and leave the document unusable (found by
        fuzzing yrs 0.28), so it is first tried on a scratch copy: the real document only ever
        sees updates that applied cleanly. An update that arrives before what it builds on is
        kept and applied again later (``sync_pending``): Yrs alone may lose it.
        """
        if not update:
            raise SyncError(ErrorCode.BAD_UPDATE, "The other device sent an empty change.")
        if update == EMPTY_UPDATE:
            return
        try:
            trial: Doc[Any] = Doc(skip_gc=self._skip_gc)
            trial.apply_update(self.doc.get_update())
            trial.apply_update(update)
            self._apply(update)
        except BaseException as exc:
            if not _rust_refused(exc):
                raise
            raise SyncError(ErrorCode.BAD_UPDATE, "The other device sent a change that cannot be read.") from exc
        self._held.after_apply(self.doc, update, self._reapply)

    @property
    def incomplete(self) -> bool:
        """Some remote update still waits for what it builds on: a re-sync would fetch that."""
        return len(self._held) > 0

    def forget_incomplete(self) -> None:
        """The peer's step 2 has just been applied: whatever a kept update still lacks, the peer
        does not have either (a crafted update, say), so stop waiting and asking for it."""
        self._held.clear()

    def _apply(self, update: bytes) -> None:
        with self._transact(local=False):
            self.doc.apply_update(update)

    def _reapply(self, update: bytes) -> None:
        try:
            self._apply(update)
        except BaseException as exc:
            if not _rust_refused(exc):
                raise
            logger.warning("A kept page-sync update no longer applies: %s", type(exc).__name__)

    def encode(self, state_vector: bytes | None = None) -> bytes:
        """The full state (to persist, or for a peer that has nothing), or what ``state_vector`` lacks."""
        try:
            return self.doc.get_update(state_vector)
        except BaseException as exc:
            if not _rust_refused(exc):
                raise
            raise SyncError(ErrorCode.BAD_UPDATE, "The other device sent a state vector that cannot be read.") from exc

    def state_vector(self) -> bytes:
        return self.doc.get_state()

    # -- operations (docs/SYNC.md order and names)

    def open_tab(self, key: str, url: str, title: str, order: float, by: str) -> None:
        _require_key("tabs", key)
        _require(RECORDS["tabs"], url=url, title=title, order=order, by=by)
        fields = {"url": url, "title": title, "order": float(order), "by": by}
        record = self._roots["tabs"].get(key)
        with self._transact(local=True):
            if isinstance(record, Map):
                # Reopening keeps the record, so that a concurrent navigate on the other side merges.
                for name, value in fields.items():
                    record[name] = value
            else:
                self._roots["tabs"][key] = Map(fields)

    def close_tab(self, key: str) -> None:
        _require_key("tabs", key)
        self._delete("tabs", key)

    def navigate(self, key: str, url: str, title: str, by: str) -> None:
        _require_key("tabs", key)
        _require(RECORDS["tabs"], url=url, title=title, by=by)
        self._edit("tabs", key, {"url": url, "title": title, "by": by})

    def set_active(self, key: str) -> None:
        _require_key("tabs", key)
        with self._transact(local=True):
            self._roots["view"]["active"] = key

    def scroll(self, tab: str, fraction: float, block: int, offset: float, by: str) -> None:
        _require_key("scroll", tab)
        _require(VALUES["scroll"], fraction=fraction, block=block, offset=offset, by=by)
        # n counts this writer's scrolls, so that an equal position written twice is still a new
        # value to whoever compares states; it goes on from this writer's largest n in the doc,
        # so a reloaded document does not count from 1 again.
        n = self._scroll_n.get(by, 0.0)
        for value in self._roots["scroll"].values():
            entry = fit(VALUES["scroll"], value) if isinstance(value, dict) else None
            if entry is not None and entry["by"] == by:
                n = max(n, entry["n"])
        self._scroll_n[by] = n = n + 1
        value = {"fraction": float(fraction), "block": float(block), "offset": float(offset), "by": by, "n": n}
        with self._transact(local=True):
            self._roots["scroll"][tab] = value

    def find(self, tab: str, query: str, match: int, count: int, by: str) -> None:
        _require_key("find", tab)
        _require(VALUES["find"], query=query, match=match, count=count, by=by)
        with self._transact(local=True):
            self._roots["find"][tab] = {"query": query, "match": float(match), "count": float(count), "by": by}

    def add_highlight(self, id: str, url: str, block: int, start: int, end: int, quote: str, note: str,
                      color: str, by: str) -> None:
        _require_key("highlights", id)
        _require(RECORDS["highlights"], url=url, block=block, start=start, end=end, quote=quote, note=note,
                 color=color, by=by)
        if start > end:
            raise SyncError(ErrorCode.BAD_MESSAGE, "A highlight cannot end before it starts.")
        record = {"url": url, "block": float(block), "start": float(start), "end": float(end), "quote": quote,
                  "note": note, "color": color, "by": by}
        with self._transact(local=True):
            self._roots["highlights"][id] = Map(record)

    def edit_highlight(self, id: str, note: str | None = None, color: str | None = None) -> None:
        _require_key("highlights", id)
        changes: Json = {}
        if note is not None:
            _require(RECORDS["highlights"], note=note)
            changes["note"] = note
        if color is not None:
            _require(RECORDS["highlights"], color=color)
            changes["color"] = color
        self._edit("highlights", id, changes)

    def delete_highlight(self, id: str) -> None:
        _require_key("highlights", id)
        self._delete("highlights", id)

    def add_bookmark(self, id: str, url: str, title: str, created: float, by: str) -> None:
        _require_key("bookmarks", id)
        _require(RECORDS["bookmarks"], url=url, title=title, created=created, by=by)
        with self._transact(local=True):
            self._roots["bookmarks"][id] = Map({"url": url, "title": title, "created": float(created), "by": by})

    def rename_bookmark(self, id: str, title: str) -> None:
        _require_key("bookmarks", id)
        _require(RECORDS["bookmarks"], title=title)
        self._edit("bookmarks", id, {"title": title})

    def delete_bookmark(self, id: str) -> None:
        _require_key("bookmarks", id)
        self._delete("bookmarks", id)

    def set_follow(self, direction: Literal["phone_follows_pc", "pc_follows_phone"], on: bool) -> None:
        if direction not in FOLLOW_DIRECTIONS:
            raise SyncError(ErrorCode.BAD_MESSAGE, "Follow is either phone_follows_pc or pc_follows_phone.")
        if not is_bool(on):
            raise SyncError(ErrorCode.BAD_MESSAGE, "Follow is switched on or off with true or false.")
        with self._transact(local=True):
            self._roots["follow"][direction] = on

    def set_reader(self, tab: str, card: str, url: str) -> None:
        _require_key("reader", tab)
        _require(VALUES["reader"], card=card, url=url)
        with self._transact(local=True):
            self._roots["reader"][tab] = {"card": card, "url": url}

    def _edit(self, root: str, key: str, changes: Json) -> None:
        # Editing something deleted is a no-op: the delete wins (docs/SYNC.md).
        record = self._roots[root].get(key)
        if not isinstance(record, Map) or not changes:
            return
        with self._transact(local=True):
            for name, value in changes.items():
                record[name] = value

    def _delete(self, root: str, key: str) -> None:
        if key in self._roots[root]:
            with self._transact(local=True):
                del self._roots[root][key]

    # -- state

    def state(self) -> Json:
        """The document as plain JSON, every entry checked: what the tab and the reader view apply."""
        roots = self._roots
        out: Json = {}
        for root, fields in RECORDS.items():
            kept: Json = {}
            for key, record in roots[root].items():
                if KEYS[root](key) and isinstance(record, Map):
                    fitted = fit(fields, {name: record.get(name) for name in fields})
                    if fitted is not None:
                        kept[key] = fitted
            out[root] = kept
        for root, fields in VALUES.items():
            kept = {}
            for key, value in roots[root].items():
                if KEYS[root](key) and isinstance(value, dict):
                    fitted = fit(fields, value)
                    if fitted is not None:
                        kept[key] = fitted
            out[root] = kept
        active = roots["view"].get("active")
        out["active"] = active if tab_key(active) else None
        follow = roots["follow"]
        out["follow"] = {direction: value if is_bool(value := follow.get(direction, True)) else True
                         for direction in FOLLOW_DIRECTIONS}
        return {name: out[name] for name in
                ("tabs", "active", "scroll", "find", "highlights", "bookmarks", "follow", "reader")}
