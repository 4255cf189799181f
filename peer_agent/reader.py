"""The reader view of a page: its readable text as blocks (docs/SYNC.md "Reader view").

Blocks come from the extension (Readability on the live DOM, so each block is a live element of
the PC tab) or, for a page the agent fetches itself, from readability-lxml. Either way they are
checked here with the same caps, then travel gzip'd as one binary frame beside a card's
thumbnails (``PageText``). A block's index is the paragraph anchor that scroll positions, find
matches and highlights refer to, on both sides.

Pure: no I/O; ``reader_from_html`` is CPU work the caller runs in a thread.
"""

from __future__ import annotations

import gzip
import logging
import re
import zlib
from typing import Annotated, Final, Literal

import msgspec
from selectolax.lexbor import LexborHTMLParser, LexborNode

from signaling.schema import MAX_THUMB_BYTES, MAX_URL_CHARS, ErrorCode

from .errors import PeerbeamError
from .harvest import resolve

log = logging.getLogger(__name__)

MAX_BLOCKS: Final = 2000
MAX_BLOCK_CHARS: Final = 8000
MAX_READER_JSON: Final = 1024 * 1024
MAX_READER_GZIP: Final = MAX_THUMB_BYTES  # one frame
MAX_TITLE_CHARS: Final = 1024

BlockKind = Literal["h1", "h2", "h3", "h4", "h5", "h6", "p", "li", "quote", "pre", "img"]
_TAG_KIND: Final[dict[str, BlockKind]] = {
    "h1": "h1", "h2": "h2", "h3": "h3", "h4": "h4", "h5": "h5", "h6": "h6",
    "p": "p", "li": "li", "blockquote": "quote", "pre": "pre", "img": "img",
}
_WHITESPACE = re.compile(r"\s+")


class ReaderError(PeerbeamError):
    """The reader view of a page that cannot be used (the sentence says why)."""

    code = ErrorCode.BAD_MESSAGE


class Block(msgspec.Struct, forbid_unknown_fields=True, frozen=True):
    k: BlockKind
    t: Annotated[str, msgspec.Meta(max_length=MAX_BLOCK_CHARS)]
    src: Annotated[str, msgspec.Meta(max_length=MAX_URL_CHARS)] | None = None


class Reader(msgspec.Struct, forbid_unknown_fields=True, frozen=True):
    url: Annotated[str, msgspec.Meta(max_length=MAX_URL_CHARS)]
    title: Annotated[str, msgspec.Meta(max_length=MAX_TITLE_CHARS)]
    blocks: Annotated[list[Block], msgspec.Meta(max_length=MAX_BLOCKS)]
    truncated: bool = False
    v: Literal[1] = 1


def normalize(text: str) -> str:
    """Every whitespace run to one space, trimmed: the text both sides index into."""
    return _WHITESPACE.sub(" ", text).strip()


def reader_from_report(raw: object, page_url: str) -> Reader:
    """The extension's reader blocks, hostile until checked. A block's index is its anchor in
    the live tab, so a bad block is emptied in place (an empty paragraph), never removed:
    removing it would shift every later scroll position and highlight by one."""
    if not isinstance(raw, dict):
        raise ReaderError("The browser extension sent a reader view that is not an object.")
    blocks_raw = raw.get("blocks")
    if not isinstance(blocks_raw, list):
        raise ReaderError("The browser extension sent a reader view without blocks.")
    blocks: list[Block] = []
    for item in blocks_raw[:MAX_BLOCKS]:
        try:
            checked = _clean(msgspec.convert(item, Block), page_url)
        except msgspec.ValidationError:
            checked = None
        blocks.append(checked or Block("p", ""))
    title = raw.get("title")
    return Reader(url=page_url, title=normalize(title if isinstance(title, str) else "")[:MAX_TITLE_CHARS],
                  blocks=blocks, truncated=bool(raw.get("truncated")) or len(blocks_raw) > MAX_BLOCKS)


def _clean(block: Block, page_url: str) -> Block | None:
    text = normalize(block.t)[:MAX_BLOCK_CHARS]
    if block.k == "img":
        src = resolve(block.src or "", page_url)  # http(s) only
        return None if src is None else Block("img", text, src)
    return Block(block.k, text) if text else None


def reader_from_html(html: str, url: str) -> Reader:
    """readability-lxml's article of a fetched page, cut into blocks."""
    from readability import Document  # type: ignore[import-untyped]  # lxml is heavy: imported when needed

    try:
        document = Document(html, url=url)
        article = document.summary(html_partial=True)
        title = document.short_title() or ""
    except Exception as exc:  # readability raises its own Unparseable, lxml ParserError...
        log.info("readability found no article: %s", type(exc).__name__)
        article, title = html, ""
    root = LexborHTMLParser(article).body
    blocks: list[Block] = []
    truncated = False
    if root is not None:
        for node in root.traverse(include_text=False):
            kind = _TAG_KIND.get(node.tag or "")
            if kind is None or _inside_block(node, root):
                continue
            if len(blocks) >= MAX_BLOCKS:
                truncated = True
                break
            if kind == "img":
                block = _clean(Block("img", node.attributes.get("alt") or "", node.attributes.get("src") or ""), url)
            else:
                block = _clean(Block(kind, (node.text(separator=" ") or "")[: MAX_BLOCK_CHARS * 4]), url)
            if block is not None:
                blocks.append(block)
    return Reader(url=url, title=normalize(title)[:MAX_TITLE_CHARS], blocks=blocks, truncated=truncated)


def _inside_block(node: LexborNode, root: LexborNode) -> bool:
    """A <p> inside an <li> or <blockquote> is part of that block, not a block of its own
    (an <img> inside a paragraph still is one: pictures are shown on their own)."""
    if node.tag == "img":
        return False
    parent = node.parent
    while parent is not None and parent is not root and parent.tag != "body":
        if parent.tag in _TAG_KIND:
            return True
        parent = parent.parent
    return False


def encode_reader(reader: Reader) -> bytes:
    """gzip'd JSON that fits one frame: blocks are cut from the end (``truncated``) until it does."""
    blocks = list(reader.blocks)
    truncated = reader.truncated
    while True:
        candidate = Reader(url=reader.url, title=reader.title, blocks=blocks, truncated=truncated)
        data = msgspec.json.encode(candidate)
        if len(data) <= MAX_READER_JSON:
            packed = gzip.compress(data, compresslevel=6, mtime=0)
            if len(packed) <= MAX_READER_GZIP:
                return packed
            shrink = len(packed) / MAX_READER_GZIP
        else:
            shrink = len(data) / MAX_READER_JSON
        if not blocks:
            raise ReaderError("The page's reader view cannot be made small enough to send.")
        keep = min(len(blocks) - 1, int(len(blocks) / shrink * 0.95))
        blocks = blocks[:max(keep, 0)]
        truncated = True


def decode_reader(data: bytes) -> Reader:
    """The receiving side: bounded gunzip (no bomb gets past 1 MiB), then the schema."""
    try:
        inflater = zlib.decompressobj(wbits=16 + zlib.MAX_WBITS)
        plain = inflater.decompress(data, MAX_READER_JSON + 1)
    except zlib.error:
        raise ReaderError("The reader view is not valid gzip.", code=ErrorCode.BAD_FRAME) from None
    if len(plain) > MAX_READER_JSON or inflater.unconsumed_tail:
        raise ReaderError("The reader view unpacks to more than 1 MiB.", code=ErrorCode.BAD_FRAME)
    try:
        return msgspec.json.decode(plain, type=Reader)
    except msgspec.DecodeError as exc:
        raise ReaderError(f"The reader view does not fit its schema: {exc}.", code=ErrorCode.BAD_FRAME) from None


__all__ = ["Block", "Reader", "ReaderError", "decode_reader", "encode_reader", "normalize", "reader_from_html",
           "reader_from_report"]
