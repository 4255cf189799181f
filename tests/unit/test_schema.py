"""The one wire schema: every message round-trips; anything else is refused with a stable code."""

from __future__ import annotations

import json

import msgspec
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from signaling import schema as s

SAMPLES: list[tuple[msgspec.Struct, object]] = [
    (s.PairCreate(name="Desk PC"), s.decode_client),
    (s.PairRefresh(), s.decode_client),
    (s.PairJoin(token="AQE" * 10, name="Phone"), s.decode_client),
    (s.Rendezvous(rid="abc_DEF-123"), s.decode_client),
    (s.Relay(data=b"\x01\x02\xff"), s.decode_client),
    (s.PairCreated(token="t", expires_at=1.5, ice_servers=[s.IceServer(urls=["stun:198.51.100.1"])]), s.decode_server),
    (s.PeerJoined(name="Phone"), s.decode_server),
    (s.PairJoined(peer_name="PC", ice_servers=[]), s.decode_server),
    (s.JoinRefused(code=s.ErrorCode.TOKEN_USED, message="used"), s.decode_server),
    (s.RendezvousWaiting(), s.decode_server),
    (s.RendezvousMatched(ice_servers=[s.IceServer(urls=["turn:x"], username="1:a", credential="c")]), s.decode_server),
    (s.PeerLeft(), s.decode_server),
    (s.Error(code=s.ErrorCode.BAD_JSON, message="no"), s.decode_server),
    (s.Hello(name="PC", identity_key=b"k" * 32, device="pc"), s.decode_signal),
    (s.PairAccept(), s.decode_signal),
    (s.PairReject(message="no"), s.decode_signal),
    (s.Sdp(type="offer", sdp="v=0"), s.decode_signal),
    (s.IceCandidate(candidate="candidate:1 1 udp 1 198.51.100.1 9 typ host", sdp_mid="0", sdp_mline_index=0), s.decode_signal),
    (s.Bye(), s.decode_signal),
    (s.PairRemoved(), s.decode_signal),
    (s.Bind(mac=b"m" * 32), s.decode_channel),
    (s.Text(id="abc", text="hello ✓"), s.decode_channel),
    (s.Delivered(id="abc"), s.decode_channel),
    (s.Ping(id=1, sent_at=2.0), s.decode_channel),
    (s.Pong(id=1, sent_at=2.0), s.decode_channel),
    (s.Unpair(), s.decode_channel),
    (s.ChannelError(code=s.ErrorCode.BAD_MESSAGE, message="no"), s.decode_channel),
    (s.TransferOffer(id="0123456789abcdef", name="photo ✓.jpg", size=1234, sha256="ab" * 32, mime="image/jpeg"),
     s.decode_channel),
    (s.TransferAccept(id="0123456789abcdef", offset=1000), s.decode_channel),
    (s.TransferReject(id="0123456789abcdef", message="no thanks"), s.decode_channel),
    (s.TransferProgress(id="0123456789abcdef", received=500), s.decode_channel),
    (s.TransferCancel(id="0123456789abcdef", message="stopped"), s.decode_channel),
    (s.TransferDone(id="0123456789abcdef"), s.decode_channel),
    (s.TransferFailure(id="0123456789abcdef", code=s.ErrorCode.HASH_MISMATCH, message="bad"), s.decode_channel),
]


@pytest.mark.parametrize("message,decode", SAMPLES, ids=lambda x: type(x).__name__)
def test_round_trip_carries_tag_and_version(message, decode):
    wire = s.encode(message)
    obj = json.loads(wire)
    assert obj["v"] == 1 and isinstance(obj["t"], str)
    assert decode(wire) == message


@pytest.mark.parametrize(
    "frame,code",
    [
        (b"{", s.ErrorCode.BAD_JSON),
        (b"", s.ErrorCode.BAD_JSON),
        (b'{"t":"pair.create","name":"\xff"}', s.ErrorCode.BAD_JSON),  # not UTF-8 inside a string
        (b"[1,2]", s.ErrorCode.BAD_MESSAGE),
        (b'{"t":"nope"}', s.ErrorCode.BAD_MESSAGE),
        (b'{"name":"x"}', s.ErrorCode.BAD_MESSAGE),  # no tag
        (b'{"t":"pair.create","name":"x","admin":true}', s.ErrorCode.BAD_MESSAGE),  # extra field
        (b'{"t":"pair.create","name":"x","v":2}', s.ErrorCode.BAD_MESSAGE),  # other version
        (b'{"t":"pair.create","name":""}', s.ErrorCode.BAD_MESSAGE),  # empty name
        (b'{"t":"pair.create","name":"' + b"n" * 65 + b'"}', s.ErrorCode.BAD_MESSAGE),
        (b'{"t":"rendezvous","rid":"not base64!"}', s.ErrorCode.BAD_MESSAGE),
        (b'{"t":"relay","data":"***"}', s.ErrorCode.BAD_MESSAGE),
        (b'{"t":"peer.joined","name":"x"}', s.ErrorCode.BAD_MESSAGE),  # a server message sent by a client
        (b" " * (s.MAX_FRAME_BYTES + 1), s.ErrorCode.FRAME_TOO_LARGE),
    ],
)
def test_client_frames_refused_with_stable_codes(frame, code):
    with pytest.raises(s.SchemaError) as info:
        s.decode_client(frame)
    assert info.value.code == code and info.value.message


def test_relay_payload_cap_keeps_frames_under_64_kib():
    big = s.Relay(data=b"x" * s.MAX_RELAY_BYTES)
    assert len(s.encode(big)) < s.MAX_FRAME_BYTES
    with pytest.raises(s.SchemaError):
        s.decode_client(s.encode(s.Relay(data=b"x" * (s.MAX_RELAY_BYTES + 1))))


def test_channel_text_and_bind_caps():
    with pytest.raises(s.SchemaError):
        s.decode_channel(s.encode(s.Text(id="a", text="x" * (s.MAX_TEXT_CHARS + 1))))
    with pytest.raises(s.SchemaError):
        s.decode_channel(b'{"t":"bind","mac":"AAAA"}')  # 3 bytes, not a 32-byte MAC


def test_exported_json_schema_names_every_tag():
    exported = s.export_json_schema()
    text = json.dumps(exported)
    for message, _ in SAMPLES:
        tag = json.loads(s.encode(message))["t"]
        assert f'"{tag}"' in text, tag
    assert set(exported["properties"]) == {"ClientMessage", "ServerMessage", "PeerSignal", "ChannelMessage"}


@settings(max_examples=300, deadline=None)
@given(st.one_of(st.binary(max_size=300), st.text(max_size=300).map(str.encode),
                 st.dictionaries(st.text(max_size=8), st.one_of(st.text(max_size=8), st.integers(), st.none()),
                                 max_size=5).map(lambda d: json.dumps({"t": "pair.join", **d}).encode())))
def test_decoders_raise_only_schema_errors(frame):
    for decode in (s.decode_client, s.decode_server, s.decode_signal, s.decode_channel):
        try:
            decode(frame)
        except s.SchemaError:
            pass


_OFFER = {"t": "transfer.offer", "id": "0123456789abcdef", "name": "a.txt", "size": 1, "sha256": "0" * 64}


@pytest.mark.parametrize(
    "change",
    [
        {"id": "0123456789ABCDEF"},  # upper case: the id is lower-case hex only
        {"id": "0123456789abcde"},  # 15 digits, not 8 bytes
        {"id": "../../etc/passwd0"},
        {"name": ""},
        {"name": "n" * (s.MAX_FILE_NAME_CHARS + 1)},
        {"size": -1},
        {"size": s.MAX_FILE_BYTES + 1},
        {"sha256": "0" * 63},
        {"sha256": "g" * 64},
        {"mime": "text"},
        {"mime": "text/html\r\nX-Evil: 1"},
        {"extra": 1},
    ],
)
def test_transfer_offer_caps(change):
    with pytest.raises(s.SchemaError) as info:
        s.decode_channel(json.dumps({**_OFFER, **change}))
    assert info.value.code == s.ErrorCode.BAD_MESSAGE
    assert s.decode_channel(json.dumps(_OFFER)) == s.TransferOffer(id=_OFFER["id"], name="a.txt", size=1,
                                                                    sha256="0" * 64)


def test_transfer_accept_offset_capped():
    with pytest.raises(s.SchemaError):
        s.decode_channel(json.dumps({"t": "transfer.accept", "id": "0123456789abcdef",
                                     "offset": s.MAX_FILE_BYTES + 1}))
