"""The shapes of the shared page document (docs/SYNC.md "The document"), one check per field.

The same table checks an operation's arguments (``SyncDoc`` raises) and every entry ``state()``
reads (it leaves out what does not fit: extra fields of a good entry are dropped too). The rules
are sync_doc.js's ``SHAPES``, rule for rule, so that both sides drop the same entries; the
Python ↔ JS convergence test holds them to it. Strings are well-formed and capped in code points
(Python ``len``, sync_doc.js ``codePointLength``); integers are safe (|n| < 2**53)::

    tab key     "t" + 1..10 digits, or 16 lower-case hex      id, card   16 lower-case hex
    url         <= 8192        title   <= 1024      quote   <= 2000      note   <= 4000
    query       <= 256         color   yellow | green | blue | pink      by     pc | phone
    order       finite number                       created   finite number >= 0
    fraction, offset   number in [0, 1]             n, count  integer >= 0     match  integer >= -1
    scroll.block, highlight.block   integer 0..1999 (MAX_BLOCKS - 1)
    highlight.start, .end           integer 0..8000 (MAX_BLOCK_CHARS), start <= end
    records (tabs, highlights, bookmarks): a nested Map whose every field fits
    values (scroll, find, view.active, follow, reader): a plain JSON value, not a shared type
    follow: both directions always present, absent (or not a bool) = true
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Mapping
from typing import Any, Final

Json = dict[str, Any]
Check = Callable[[object], bool]

COLORS: Final = frozenset({"yellow", "green", "blue", "pink"})
WRITERS: Final = frozenset({"pc", "phone"})
FOLLOW_DIRECTIONS: Final = ("phone_follows_pc", "pc_follows_phone")
MAX_BLOCKS: Final = 2000  # docs/SYNC.md "Reader view"
MAX_BLOCK_CHARS: Final = 8000
MAX_SAFE_INTEGER: Final = 2**53 - 1  # JS Number.MAX_SAFE_INTEGER
_TAB_KEY = re.compile(r"t[0-9]{1,10}|[0-9a-f]{16}")
_HEX_ID = re.compile(r"[0-9a-f]{16}")
# Only web pages: a tab, bookmark or reader address is something the PC may open (sync_doc.js).
_WEB_URL = re.compile(r"[Hh][Tt][Tt][Pp][Ss]?://")


def _text(cap: int) -> Check:
    def check(value: object) -> bool:
        if not isinstance(value, str) or len(value) > cap:
            return False
        try:
            value.encode("utf-8")  # a lone surrogate cannot enter the Rust side
        except UnicodeEncodeError:
            return False
        return True

    return check


def _pattern(pattern: re.Pattern[str]) -> Check:
    return lambda value: isinstance(value, str) and pattern.fullmatch(value) is not None


def _number(value: object) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


def _at_least(low: float) -> Check:
    return lambda value: _number(value) and float(value) >= low  # type: ignore[arg-type]


def _unit(value: object) -> bool:
    return _number(value) and 0.0 <= float(value) <= 1.0  # type: ignore[arg-type]


def _integer(low: int, high: int = MAX_SAFE_INTEGER) -> Check:
    # Number.isSafeInteger in sync_doc.js: 3.0 is an integer, 2**53 is not.
    return lambda value: _number(value) and float(value).is_integer() and low <= float(value) <= high  # type: ignore[arg-type]


def _one_of(options: frozenset[str]) -> Check:
    return lambda value: isinstance(value, str) and value in options


def is_bool(value: object) -> bool:
    return isinstance(value, bool)


tab_key: Final = _pattern(_TAB_KEY)
hex_id: Final = _pattern(_HEX_ID)
_URL_TEXT, TITLE, QUOTE, NOTE, QUERY = _text(8192), _text(1024), _text(2000), _text(4000), _text(256)


def URL(value: object) -> bool:  # noqa: N802 - a check, named like its siblings
    return isinstance(value, str) and _URL_TEXT(value) and _WEB_URL.match(value) is not None
BY, COLOR = _one_of(WRITERS), _one_of(COLORS)
COUNT, MATCH = _integer(0), _integer(-1)
BLOCK, CHAR = _integer(0, MAX_BLOCKS - 1), _integer(0, MAX_BLOCK_CHARS)

# root -> field -> check. "record" roots hold nested Maps, "value" roots plain JSON objects.
RECORDS: Final[Mapping[str, Mapping[str, Check]]] = {
    "tabs": {"url": URL, "title": TITLE, "order": _number, "by": BY},
    "highlights": {"url": URL, "block": BLOCK, "start": CHAR, "end": CHAR, "quote": QUOTE,
                   "note": NOTE, "color": COLOR, "by": BY},
    "bookmarks": {"url": URL, "title": TITLE, "created": _at_least(0.0), "by": BY},
}
VALUES: Final[Mapping[str, Mapping[str, Check]]] = {
    "scroll": {"fraction": _unit, "block": BLOCK, "offset": _unit, "by": BY, "n": COUNT},
    "find": {"query": QUERY, "match": MATCH, "count": COUNT, "by": BY},
    "reader": {"card": hex_id, "url": URL},
}
KEYS: Final[Mapping[str, Check]] = {
    "tabs": tab_key, "highlights": hex_id, "bookmarks": hex_id, "scroll": tab_key, "find": tab_key,
    "reader": tab_key,
}
ROOTS: Final = ("tabs", "view", "scroll", "find", "highlights", "bookmarks", "follow", "reader")


def _plain(value: object) -> object:
    # pycrdt reads every number back as a float; ints given to an operation are stored as such.
    return float(value) if _number(value) else value  # type: ignore[arg-type]


def fit(fields: Mapping[str, Check], entry: Mapping[str, object]) -> Json | None:
    """The entry reduced to ``fields``, numbers as floats; None if any field is missing or bad."""
    out: Json = {}
    for name, check in fields.items():
        value = entry.get(name)
        if not check(value):  # a check accepts only str, number or bool: never a shared type
            return None
        out[name] = _plain(value)
    if "start" in out and out["start"] > out["end"]:
        return None
    return out
