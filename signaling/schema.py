"""The one wire schema of peerbeam: every message the server, the agent and the browser exchange.

Four unions, one per hop:

* ``ClientMessage`` — a device to the signaling server (JSON text frames on ``/v1/ws``);
* ``ServerMessage`` — the signaling server to a device;
* ``PeerSignal`` — device to device *inside* Noise transport messages (the server routes
  them as opaque ``relay.data`` bytes and never sees them);
* ``ChannelMessage`` — device to device on the WebRTC data channel once it is open.

Every record is a frozen msgspec Struct, tagged by ``t``, carrying ``v`` (the schema version),
and decoding rejects unknown tags and unknown fields. ``export_json_schema()`` writes the JSON
Schema the browser side is checked against.
"""

from __future__ import annotations

import enum
from typing import Annotated, Any, Final, Literal, TypeVar

import msgspec

SCHEMA_VERSION: Final = 1

# Every frame from the network is capped at 64 KiB before it is even parsed (DESIGN: Hardening).
MAX_FRAME_BYTES: Final = 64 * 1024
MAX_NAME_CHARS: Final = 64
MAX_TEXT_CHARS: Final = 16 * 1024
# A relayed envelope is a Noise message (≤ 65535 bytes by Noise rev 34 §3) plus a kind byte;
# base64 in JSON must still fit a 64 KiB frame, so cap the raw bytes well below that.
MAX_RELAY_BYTES: Final = 46 * 1024
# Files: a name as most file systems allow it (255), and a size bound that keeps offsets and
# progress well inside a u64 and any sane disk.
MAX_FILE_NAME_CHARS: Final = 255
MAX_FILE_BYTES: Final = 64 * 1024**3


class ErrorCode(enum.StrEnum):
    """Stable error codes. The sentence for people travels beside the code."""

    BAD_JSON = "bad_json"
    BAD_MESSAGE = "bad_message"
    FRAME_TOO_LARGE = "frame_too_large"
    BAD_TOKEN = "bad_token"
    TOKEN_EXPIRED = "token_expired"
    TOKEN_USED = "token_used"
    ROOM_FULL = "room_full"
    RATE_LIMITED = "rate_limited"
    AUTH_TIMEOUT = "auth_timeout"
    NOT_IN_ROOM = "not_in_room"
    ALREADY_BOUND = "already_bound"
    PEER_GONE = "peer_gone"
    INTERCEPTION = "interception"
    PAIRING_REJECTED = "pairing_rejected"
    UNKNOWN_DEVICE = "unknown_device"
    CONNECT_TIMEOUT = "connect_timeout"
    RELAY_UNAVAILABLE = "relay_unavailable"
    SERVER_UNREACHABLE = "server_unreachable"
    INTERNAL = "internal"
    # transfers
    BAD_FRAME = "bad_frame"
    HASH_MISMATCH = "hash_mismatch"
    DISK_FULL = "disk_full"
    UNKNOWN_TRANSFER = "unknown_transfer"
    STALLED = "stalled"
    # pages
    INACTIVE = "inactive"
    NO_PAGE = "no_page"
    BAD_SCHEME = "bad_scheme"
    NOT_HTML = "not_html"
    PAGE_UNREACHABLE = "page_unreachable"
    # page sync
    UNKNOWN_DOC = "unknown_doc"
    BAD_UPDATE = "bad_update"
    UPDATE_TOO_LARGE = "update_too_large"
    NO_ACCESS = "no_access"
    NOT_SYNCING = "not_syncing"


Name = Annotated[str, msgspec.Meta(min_length=1, max_length=MAX_NAME_CHARS)]
Token = Annotated[str, msgspec.Meta(min_length=1, max_length=256)]
B64Id = Annotated[str, msgspec.Meta(min_length=1, max_length=64, pattern="^[A-Za-z0-9_-]+$")]
RelayBytes = Annotated[bytes, msgspec.Meta(max_length=MAX_RELAY_BYTES)]
Sentence = Annotated[str, msgspec.Meta(max_length=1024)]
# 8 random bytes in lower-case hex: the same id travels raw in every binary frame header.
TransferId = Annotated[str, msgspec.Meta(pattern="^[0-9a-f]{16}$")]
FileName = Annotated[str, msgspec.Meta(min_length=1, max_length=MAX_FILE_NAME_CHARS)]
FileSize = Annotated[int, msgspec.Meta(ge=0, le=MAX_FILE_BYTES)]
Sha256Hex = Annotated[str, msgspec.Meta(pattern="^[0-9a-f]{64}$")]
# RFC 6838 §4.2 restricted names, type/subtype, each ≤ 127 characters.
Mime = Annotated[str, msgspec.Meta(max_length=255, pattern=r"^[A-Za-z0-9][A-Za-z0-9!#$&^_.+-]{0,126}/[A-Za-z0-9][A-Za-z0-9!#$&^_.+-]{0,126}$")]


# frozen=True is repeated on every subclass: msgspec inherits it anyway, but mypy's
# dataclass_transform reading does not ("Non-frozen dataclass cannot inherit from a frozen one").
class _Base(
    msgspec.Struct,
    tag_field="t",
    forbid_unknown_fields=True,
    frozen=True,
    kw_only=True,
):
    v: Literal[1] = 1


class IceServer(msgspec.Struct, forbid_unknown_fields=True, frozen=True, kw_only=True):
    """W3C RTCIceServer: ``urls`` plus time-limited TURN credentials where needed."""

    urls: list[str]
    username: str | None = None
    credential: str | None = None


# ---- device → server -------------------------------------------------------------------------


class PairCreate(_Base, tag="pair.create", frozen=True):
    """The agent asks for a pairing room and its first sealed token."""

    name: Name


class PairRefresh(_Base, tag="pair.refresh", frozen=True):
    """The agent asks for a fresh token for its room before the current one expires."""


class PairJoin(_Base, tag="pair.join", frozen=True):
    """A device claims a sealed token from a QR code."""

    token: Token
    name: Name


class PairPeek(_Base, tag="pair.peek", frozen=True):
    """Read-only look at a token before the user taps "Pair": who showed it, until when.

    Answered by ``pair.info`` or an error (``token_expired``, ``token_used``, ``bad_token``,
    ``peer_gone``). It never consumes the token: a link prefetcher or a curious scanner that
    peeks burns nothing (DESIGN "Pairing" step 2: claim only after a tap).
    """

    token: Token


class Rendezvous(_Base, tag="rendezvous", frozen=True):
    """An already-paired device presents ``HKDF(pair_secret, "rid" | day)`` (base64url)."""

    rid: B64Id


class Relay(_Base, tag="relay", frozen=True):
    """Opaque bytes for the other member of the room. Base64 in JSON."""

    data: RelayBytes


ClientMessage = PairCreate | PairRefresh | PairJoin | PairPeek | Rendezvous | Relay


# ---- server → device -------------------------------------------------------------------------


class PairCreated(_Base, tag="pair.created", frozen=True):
    token: str
    expires_at: float
    ice_servers: list[IceServer]


class PairInfo(_Base, tag="pair.info", frozen=True):
    """The answer to ``pair.peek``: the name the agent gave its room and the token's expiry."""

    name: Name
    expires_at: float


class PeerJoined(_Base, tag="peer.joined", frozen=True):
    """The bind notification: a device claimed the agent's token."""

    name: Name


class PairJoined(_Base, tag="pair.joined", frozen=True):
    """Sent to the joining device: it is bound to the agent's room."""

    peer_name: Name
    ice_servers: list[IceServer]


class JoinRefused(_Base, tag="join.refused", frozen=True):
    """Tells the agent that someone tried its token again (or its room was full)."""

    code: ErrorCode
    message: Sentence


class RendezvousWaiting(_Base, tag="rendezvous.waiting", frozen=True):
    pass


class RendezvousMatched(_Base, tag="rendezvous.matched", frozen=True):
    ice_servers: list[IceServer]


class PeerLeft(_Base, tag="peer.left", frozen=True):
    pass


class Error(_Base, tag="error", frozen=True):
    code: ErrorCode
    message: Sentence


ServerMessage = (
    PairCreated
    | PairInfo
    | PeerJoined
    | PairJoined
    | JoinRefused
    | RendezvousWaiting
    | RendezvousMatched
    | PeerLeft
    | Relay
    | Error
)


# ---- device ↔ device, inside Noise transport messages ---------------------------------------


class Hello(_Base, tag="hello", frozen=True):
    """Handshake payload: who I am. ``identity_key`` is the long-term X25519 public key."""

    name: Name
    identity_key: Annotated[bytes, msgspec.Meta(min_length=32, max_length=32)]
    device: Literal["pc", "phone", "cli"]


class PairAccept(_Base, tag="pair.accept", frozen=True):
    pass


class PairReject(_Base, tag="pair.reject", frozen=True):
    message: Sentence


class Sdp(_Base, tag="rtc.sdp", frozen=True):
    type: Literal["offer", "answer"]
    sdp: Annotated[str, msgspec.Meta(max_length=32 * 1024)]


class IceCandidate(_Base, tag="rtc.ice", frozen=True):
    """A trickled candidate (RFC 8838); an empty ``candidate`` means end-of-candidates."""

    candidate: Annotated[str, msgspec.Meta(max_length=1024)]
    sdp_mid: Annotated[str, msgspec.Meta(max_length=64)] | None = None
    sdp_mline_index: int | None = None


class Bye(_Base, tag="bye", frozen=True):
    message: Sentence = ""


class PairRemoved(_Base, tag="pair.removed", frozen=True):
    """Answer to a reconnect from a device that was unpaired here while it was away."""


PeerSignal = Hello | PairAccept | PairReject | Sdp | IceCandidate | Bye | PairRemoved


# ---- device ↔ device, on the data channel ---------------------------------------------------


class Bind(_Base, tag="bind", frozen=True):
    """First message on a fresh channel: MAC over (role, handshake hash, fingerprints)."""

    mac: Annotated[bytes, msgspec.Meta(min_length=32, max_length=32)]


class Text(_Base, tag="text", frozen=True):
    id: B64Id
    text: Annotated[str, msgspec.Meta(max_length=MAX_TEXT_CHARS)]


class Delivered(_Base, tag="delivered", frozen=True):
    """The receiver's acknowledgement of a ``text`` (the sender tells its user "delivered")."""

    id: B64Id


class Ping(_Base, tag="ping", frozen=True):
    id: int
    sent_at: float


class Pong(_Base, tag="pong", frozen=True):
    id: int
    sent_at: float


class Unpair(_Base, tag="unpair", frozen=True):
    pass


class ChannelError(_Base, tag="error", frozen=True):
    code: ErrorCode
    message: Sentence


# Files (DESIGN "What flows once connected"): the control half of a transfer. The bytes travel
# as binary frames on the same channel (peer_agent/frames.py); the receiver answers an offer
# with the offset it already holds, which is how a transfer resumes after a reconnect.


class TransferOffer(_Base, tag="transfer.offer", frozen=True):
    """The sender proposes a file. ``name`` is only a suggestion: the receiver reduces it."""

    id: TransferId
    name: FileName
    size: FileSize
    sha256: Sha256Hex
    mime: Mime | None = None


class TransferAccept(_Base, tag="transfer.accept", frozen=True):
    """The receiver wants the file from ``offset`` on (the bytes it already has: resume)."""

    id: TransferId
    offset: FileSize


class TransferReject(_Base, tag="transfer.reject", frozen=True):
    id: TransferId
    message: Sentence


class TransferProgress(_Base, tag="transfer.progress", frozen=True):
    """Receiver to sender, throttled: bytes written so far (resumed prefix included)."""

    id: TransferId
    received: FileSize


class TransferCancel(_Base, tag="transfer.cancel", frozen=True):
    """Either side stops the transfer; the receiver removes its partial file."""

    id: TransferId
    message: Sentence


class TransferDone(_Base, tag="transfer.done", frozen=True):
    """The receiver verified the sha-256 and the file now has its final name."""

    id: TransferId


class TransferFailure(_Base, tag="transfer.failed", frozen=True):
    id: TransferId
    code: ErrorCode
    message: Sentence


# Pages (DESIGN "Page capture and thumbnails"): a card is one ``page.push`` naming its
# thumbnails; each thumbnail's bytes follow as exactly one binary frame (peer_agent/frames.py)
# whose id is the thumbnail's id, so a thumbnail is at most one frame's payload.
MAX_THUMBNAILS: Final = 41  # 40 images and an optional screenshot of the visible tab
MAX_URL_CHARS: Final = 8192
MAX_THUMB_BYTES: Final = MAX_FRAME_BYTES - 18  # the frame header is 18 bytes
HttpUrl = Annotated[str, msgspec.Meta(max_length=MAX_URL_CHARS, pattern=r"^[Hh][Tt][Tt][Pp][Ss]?://")]
Pixels = Annotated[int, msgspec.Meta(ge=1, le=1_000_000)]


class PageThumb(msgspec.Struct, forbid_unknown_fields=True, frozen=True, kw_only=True):
    id: TransferId
    kind: Literal["image", "screenshot"] = "image"
    mime: Literal["image/webp", "image/jpeg"]
    width: Annotated[int, msgspec.Meta(ge=1, le=4096)]
    height: Annotated[int, msgspec.Meta(ge=1, le=4096)]
    natural_width: Pixels
    natural_height: Pixels
    size: Annotated[int, msgspec.Meta(ge=1, le=MAX_THUMB_BYTES)]
    sha256: Sha256Hex
    source: Annotated[str, msgspec.Meta(max_length=MAX_URL_CHARS)] | None = None


class PageText(msgspec.Struct, forbid_unknown_fields=True, frozen=True, kw_only=True):
    """The page's readable text for the reader view (docs/SYNC.md "Reader view"): gzip'd JSON
    blocks, carried like a thumbnail as exactly one binary frame whose id is ``id``."""

    id: TransferId
    size: Annotated[int, msgspec.Meta(ge=1, le=MAX_THUMB_BYTES)]
    sha256: Sha256Hex
    encoding: Literal["gzip"] = "gzip"


# 8 random bytes in lower-case hex, like a transfer id: names one shared sync document.
DocId = Annotated[str, msgspec.Meta(pattern="^[0-9a-f]{16}$")]


class PagePush(_Base, tag="page.push", frozen=True):
    """A page card: what the PC shows. ``pull`` names the ``page.pull`` this answers, if any;
    ``doc`` marks the reader view of a synced tab (``text`` then carries its readable text)."""

    id: TransferId
    url: HttpUrl
    title: Annotated[str, msgspec.Meta(max_length=1024)]
    thumbs: Annotated[list[PageThumb], msgspec.Meta(max_length=MAX_THUMBNAILS)]
    pull: B64Id | None = None
    text: PageText | None = None
    doc: DocId | None = None


class PagePull(_Base, tag="page.pull", frozen=True):
    """The phone asks for the page the PC shows now; answered by ``page.push`` or ``page.refused``."""

    id: B64Id


class PageRefused(_Base, tag="page.refused", frozen=True):
    """No card for that pull: ``inactive`` (the agent sleeps until the user wakes it), ``no_page``..."""

    pull: B64Id
    code: ErrorCode
    message: Sentence


# Page sync (docs/SYNC.md): one shared Yjs document per pairing, chosen by the PC. Its updates
# are y-protocols sync messages (step 1, step 2, update), the same bytes pycrdt and yjs write,
# cut into chunks so that each message stays far below the 64 KiB frame cap.
MAX_SYNC_CHUNK: Final = 32 * 1024
MAX_SYNC_MESSAGE: Final = 1024 * 1024  # one reassembled sync message


class SyncStart(_Base, tag="sync.start", frozen=True):
    """The phone's "Follow my PC": start (or rejoin) the sync session of the PC's current tab."""


class SyncOpen(_Base, tag="sync.open", frozen=True):
    """The PC names the session's document; both sides then send y-protocols step 1. With
    ``rejoin`` the phone says, after a reconnect, that it still holds ``doc``: the PC answers
    ``sync.stop`` if that session has ended meanwhile."""

    doc: DocId
    rejoin: bool = False


class SyncUpdate(_Base, tag="sync.update", frozen=True):
    """One chunk of a y-protocols sync message; ``more`` says another chunk of it follows."""

    doc: DocId
    data: Annotated[bytes, msgspec.Meta(min_length=1, max_length=MAX_SYNC_CHUNK)]
    more: bool = False


class SyncReader(_Base, tag="sync.reader", frozen=True):
    """The phone lacks the reader view the document names: the PC sends that card again."""

    doc: DocId
    card: TransferId


class SyncStop(_Base, tag="sync.stop", frozen=True):
    """Either side ends the session; both drop the document."""

    doc: DocId


class SyncRefused(_Base, tag="sync.refused", frozen=True):
    """A ``sync.start`` the PC cannot serve (no extension, no access to the tab, inactive)."""

    code: ErrorCode
    message: Sentence


ChannelMessage = (
    Bind
    | Text
    | Delivered
    | Ping
    | Pong
    | Unpair
    | ChannelError
    | TransferOffer
    | TransferAccept
    | TransferReject
    | TransferProgress
    | TransferCancel
    | TransferDone
    | TransferFailure
    | PagePush
    | PagePull
    | PageRefused
    | SyncStart
    | SyncOpen
    | SyncUpdate
    | SyncReader
    | SyncStop
    | SyncRefused
)


# ---- codecs ----------------------------------------------------------------------------------

_encoder = msgspec.json.Encoder()
_client_decoder: msgspec.json.Decoder[ClientMessage] = msgspec.json.Decoder(ClientMessage)
_server_decoder: msgspec.json.Decoder[ServerMessage] = msgspec.json.Decoder(ServerMessage)
_signal_decoder: msgspec.json.Decoder[PeerSignal] = msgspec.json.Decoder(PeerSignal)
_channel_decoder: msgspec.json.Decoder[ChannelMessage] = msgspec.json.Decoder(ChannelMessage)


class SchemaError(ValueError):
    """A frame that is not valid JSON, or not a known message of this schema version."""

    def __init__(self, code: ErrorCode, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


def encode(message: msgspec.Struct) -> bytes:
    return _encoder.encode(message)


T = TypeVar("T")


def _decode(decoder: msgspec.json.Decoder[T], data: bytes | str) -> T:
    if len(data) > MAX_FRAME_BYTES:
        raise SchemaError(ErrorCode.FRAME_TOO_LARGE, "The message is larger than 64 KiB.")
    try:
        return decoder.decode(data)
    except msgspec.DecodeError as exc:
        text = str(exc)
        # msgspec says "JSON is malformed" / "truncated" for syntax errors and
        # "Expected ..." / "Object contains unknown field" / "Invalid value" for schema errors.
        if "malformed" in text or "truncated" in text or "trailing" in text:
            raise SchemaError(ErrorCode.BAD_JSON, "The message is not valid JSON.") from None
        raise SchemaError(ErrorCode.BAD_MESSAGE, f"The message does not fit the schema: {text}") from None
    except UnicodeDecodeError:
        # msgspec validates UTF-8 lazily, inside strings, and raises this instead of DecodeError.
        raise SchemaError(ErrorCode.BAD_JSON, "The message is not valid UTF-8.") from None


def decode_client(data: bytes | str) -> ClientMessage:
    return _decode(_client_decoder, data)


def decode_server(data: bytes | str) -> ServerMessage:
    return _decode(_server_decoder, data)


def decode_signal(data: bytes | str) -> PeerSignal:
    return _decode(_signal_decoder, data)


def decode_channel(data: bytes | str) -> ChannelMessage:
    return _decode(_channel_decoder, data)


def export_json_schema() -> dict[str, Any]:
    """JSON Schema for all four unions, for the browser side and for documentation."""
    (client, server, signal, channel), components = msgspec.json.schema_components(
        [ClientMessage, ServerMessage, PeerSignal, ChannelMessage],
        ref_template="#/$defs/{name}",
    )
    return {
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "title": f"peerbeam wire schema v{SCHEMA_VERSION}",
        "$defs": components,
        "properties": {
            "ClientMessage": client,
            "ServerMessage": server,
            "PeerSignal": signal,
            "ChannelMessage": channel,
        },
    }
