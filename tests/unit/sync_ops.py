"""Random page-sync operations (docs/SYNC.md), valid by construction, for Hypothesis.

Keys, ids and urls come from small pools so that concurrent operations collide on the same tab,
highlight or bookmark: that is where merging has work to do. Shared by the Python-only wire
tests and the Python ↔ JS convergence tests.
"""

from __future__ import annotations

from typing import Any

from hypothesis import strategies as st

TABS = ("t1", "t2", "t30", "a1b2c3d4e5f60718")
HIGHLIGHTS = ("0123456789abcdef", "fedcba9876543210", "00000000000000aa")
BOOKMARKS = ("00000000000000b1", "00000000000000b2", "00000000000000b3")
CARDS = ("c0ffee00c0ffee00", "0000000000000ca1")
URLS = ("https://example.com/a", "https://example.com/b#x", "http://intranet.local/p?q=1")
COLORS = ("yellow", "green", "blue", "pink")

Op = tuple[str, tuple[Any, ...]]

by = st.sampled_from(("pc", "phone"))
tab = st.sampled_from(TABS)
url = st.sampled_from(URLS)
short_text = st.text(max_size=12)
unit = st.floats(0.0, 1.0)
number = st.integers(-1000, 1000) | st.floats(-1e9, 1e9)
block = st.integers(0, 1999)


@st.composite
def highlight_args(draw: st.DrawFn) -> tuple[Any, ...]:
    start = draw(st.integers(0, 8000))
    end = draw(st.integers(start, 8000))
    return (draw(st.sampled_from(HIGHLIGHTS)), draw(url), draw(block), start, end, draw(short_text),
            draw(short_text), draw(st.sampled_from(COLORS)), draw(by))


def _op(name: str, *args: st.SearchStrategy[Any]) -> st.SearchStrategy[Op]:
    return st.tuples(*args).map(lambda values: (name, values))


_creating = (
    _op("open_tab", tab, url, short_text, number, by),
    _op("scroll", tab, unit, block, unit, by),
    _op("find", tab, short_text, st.integers(-1, 20), st.integers(0, 20), by),
    highlight_args().map(lambda args: ("add_highlight", args)),
    _op("add_bookmark", st.sampled_from(BOOKMARKS), url, short_text, st.integers(0, 2_000_000_000), by),
)
_changing = (
    _op("close_tab", tab),
    _op("navigate", tab, url, short_text, by),
    _op("set_active", tab),
    _op("edit_highlight", st.sampled_from(HIGHLIGHTS), st.none() | short_text,
        st.none() | st.sampled_from(COLORS)),
    _op("delete_highlight", st.sampled_from(HIGHLIGHTS)),
    _op("rename_bookmark", st.sampled_from(BOOKMARKS), short_text),
    _op("delete_bookmark", st.sampled_from(BOOKMARKS)),
    _op("set_follow", st.sampled_from(("phone_follows_pc", "pc_follows_phone")), st.booleans()),
    _op("set_reader", tab, st.sampled_from(CARDS), url),
)
# Creating operations weigh double: edits and deletes need something to act on.
operations: st.SearchStrategy[Op] = st.one_of(*_creating, *_creating, *_changing)


def as_floats(value: Any) -> Any:
    """A state with every number as a float (pycrdt reads numbers so; JSON from node has ints)."""
    if isinstance(value, dict):
        return {key: as_floats(item) for key, item in value.items()}
    if isinstance(value, list):
        return [as_floats(item) for item in value]
    if isinstance(value, int) and not isinstance(value, bool):
        return float(value)
    return value
