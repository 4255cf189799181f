"""Writes tests/vectors/session.json: what the Python peer does, recorded for the browser's core.

Unlike make_crypto_vectors.py (which pins documented constructions from the primitives), this
file records what *our Python code* produces, so the JavaScript port in browser_client/app/core
can be held byte-equal to it:

* ``pairing`` / ``reconnect``: a full NKpsk0 pairing and a KKpsk0 reconnect between two
  ``SecureSession`` objects with fixed static and ephemeral keys: both handshake envelopes,
  two sealed signals each way, the handshake hash, chaining key, pair secret and 6-digit code;
* ``aborts``: abort envelopes as sent, and the reason a received one yields;
* ``signal_schema``: the PeerSignal union as msgspec describes it (field order, defaults,
  bounds), which the JS codec's table must equal;
* ``frames``: the binary frame header, encoded and refused;
* ``links``, ``fingerprints``, ``transfer_id``, ``day_of`` / ``lan_epoch_of``: inputs where
  a port could plausibly differ from Python (urlsplit and ipaddress corners, Unicode
  whitespace and case folding, float floor division), with Python's answers.

Deterministic (fixed keys, a seeded generator for link mutations). Run:
``.venv/bin/python tests/vectors/make_session_vectors.py``; tests/unit/test_session_vectors.py
fails when the committed file differs from what this produces.
"""

from __future__ import annotations

import json
import random
import struct
import typing
from pathlib import Path
from typing import Any

import msgspec
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey

from crypto import kdf
from crypto.binding import normalise_fingerprint
from crypto.errors import CryptoError, LinkError
from crypto.keys import b64u_encode, private_bytes, public_bytes
from crypto.link import parse_link
from peer_agent.frames import FrameError, decode_frame, encode_frame
from peer_agent.handshake import (
    HandshakeCompleted,
    PeerAborted,
    SecureSession,
    SignalReceived,
    abort_envelope,
    hello_for,
)
from signaling.schema import (
    MAX_FILE_BYTES,
    MAX_FRAME_BYTES,
    Bye,
    IceCandidate,
    PairAccept,
    PeerSignal,
    Sdp,
    encode,
)

PATH = Path(__file__).parent / "session.json"
MAX_PAYLOAD = MAX_FRAME_BYTES - 18


def seq(n: int, start: int) -> bytes:
    return bytes((start + i) % 256 for i in range(n))


def key(start: int) -> X25519PrivateKey:
    return X25519PrivateKey.from_private_bytes(seq(32, start))


# -- sessions ------------------------------------------------------------------------------------


def record_exchange(initiator: SecureSession, responder: SecureSession,
                    signals: dict[str, list[PeerSignal]]) -> dict[str, Any]:
    """Run the handshake and seal the given signals; every envelope is also delivered."""
    first = initiator.start()
    replies, responder_events = responder.receive(first)
    (second,) = replies
    none, initiator_events = initiator.receive(second)
    assert none == []
    (done_r,), (done_i,) = responder_events, initiator_events
    assert isinstance(done_r, HandshakeCompleted) and isinstance(done_i, HandshakeCompleted)
    assert done_r.handshake_hash == done_i.handshake_hash and done_r.code == done_i.code
    assert done_r.chaining_key == done_i.chaining_key
    sealed = []
    for sender, receiver, name in ((initiator, responder, "initiator"),
                                   (responder, initiator, "responder")):
        for signal in signals[name]:
            envelope = sender.seal(signal)
            assert receiver.receive(envelope) == ([], [SignalReceived(signal)])
            sealed.append({"from": name, "plaintext": encode(signal).decode(), "envelope": envelope.hex()})
    return {
        "handshake": [{"from": "initiator", "envelope": first.hex()},
                      {"from": "responder", "envelope": second.hex()}],
        "sealed": sealed,
        "handshake_hash": done_i.handshake_hash.hex(),
        "chaining_key": done_i.chaining_key.hex(),
        "pair_secret": kdf.pair_secret(done_i.chaining_key).hex(),
        "code": done_i.code,
    }


def party(role: str, identity: X25519PrivateKey, ephemeral: X25519PrivateKey, name: str,
          device: typing.Literal["pc", "phone", "cli"]) -> dict[str, Any]:
    return {"role": role, "identity": private_bytes(identity).hex(),
            "identity_public": public_bytes(identity).hex(), "ephemeral": private_bytes(ephemeral).hex(),
            "hello": encode(hello_for(name, identity, device)).decode()}


AGENT, PHONE = key(0x20), key(0x40)
AGENT_NAME, PHONE_NAME = "Office PC", "Ana\u2019s phone \U0001F4F1"  # raw UTF-8 on the wire
SDP_OFFER = "v=0\r\no=- 4611731400430051336 2 IN IP4 127.0.0.1\r\ns=-\r\nt=0 0\r\na=group:BUNDLE 0\r\n"
SDP_ANSWER = "v=0\r\no=- 3905720181 3905720181 IN IP4 0.0.0.0\r\ns=-\r\nt=0 0\r\n"
CANDIDATE = "candidate:842163049 1 udp 1677729535 198.51.100.7 54400 typ srflx raddr 0.0.0.0 rport 0"


def pairing() -> dict[str, Any]:
    qr_secret = seq(32, 0x11)
    e_phone, e_agent = key(0x60), key(0x80)
    phone = SecureSession.for_pairing(role="initiator", hello=hello_for(PHONE_NAME, PHONE, "phone"),
                                      identity=PHONE, qr_secret=qr_secret,
                                      agent_key=public_bytes(AGENT), ephemeral=e_phone)
    agent = SecureSession.for_pairing(role="responder", hello=hello_for(AGENT_NAME, AGENT, "pc"),
                                      identity=AGENT, qr_secret=qr_secret, agent_key=None,
                                      ephemeral=e_agent)
    signals: dict[str, list[PeerSignal]] = {
        "initiator": [Sdp(type="offer", sdp=SDP_OFFER),
                      IceCandidate(candidate=CANDIDATE, sdp_mid="0", sdp_mline_index=0)],
        "responder": [PairAccept(), Sdp(type="answer", sdp=SDP_ANSWER)],
    }
    return {"pattern": "NKpsk0", "qr_secret": qr_secret.hex(),
            "initiator": party("initiator", PHONE, e_phone, PHONE_NAME, "phone"),
            "responder": party("responder", AGENT, e_agent, AGENT_NAME, "pc"),
            **record_exchange(phone, agent, signals)}


def reconnect(pair_secret: bytes) -> dict[str, Any]:
    e_phone, e_agent = key(0xA0), key(0xC0)
    phone = SecureSession.for_reconnect(role="initiator", hello=hello_for(PHONE_NAME, PHONE, "phone"),
                                        identity=PHONE, pair_secret=pair_secret,
                                        peer_key=public_bytes(AGENT), ephemeral=e_phone)
    agent = SecureSession.for_reconnect(role="responder", hello=hello_for(AGENT_NAME, AGENT, "pc"),
                                        identity=AGENT, pair_secret=pair_secret,
                                        peer_key=public_bytes(PHONE), ephemeral=e_agent)
    signals: dict[str, list[PeerSignal]] = {
        "initiator": [IceCandidate(candidate=""), Bye()],  # end-of-candidates; defaults written
        "responder": [Sdp(type="offer", sdp=SDP_OFFER), Bye(message="Gone \u2014 \"bye\"\n")],
    }
    return {"pattern": "KKpsk0", "pair_secret_in": pair_secret.hex(),
            "initiator": party("initiator", PHONE, e_phone, PHONE_NAME, "phone"),
            "responder": party("responder", AGENT, e_agent, AGENT_NAME, "pc"),
            **record_exchange(phone, agent, signals)}


def aborts() -> dict[str, Any]:
    sent = [{"reason": r, "envelope": abort_envelope(r).hex()}
            for r in ("interception", "pairing_rejected", "r\u00e9fus\u00e9 \U0001F6AB", "x" * 80)]
    received = []
    for body in (b"interception", b"caf\xc3\xa9\xff", b""):
        session = SecureSession.for_pairing(role="responder", hello=hello_for(AGENT_NAME, AGENT, "pc"),
                                            identity=AGENT, qr_secret=bytes(32), agent_key=None)
        (event,) = session.receive(b"\x03" + body)[1]
        assert isinstance(event, PeerAborted)
        received.append({"envelope": ("03" + body.hex()), "reason": event.reason})
    return {"sent": sent, "received": received}


# -- the PeerSignal schema as msgspec sees it ----------------------------------------------------


def field_spec(field: msgspec.inspect.Field) -> dict[str, Any]:
    spec: dict[str, Any] = {"name": field.encode_name, "required": field.required}
    kind = field.type
    if isinstance(kind, msgspec.inspect.UnionType):
        (kind, none) = kind.types
        assert isinstance(none, msgspec.inspect.NoneType), "only `X | None` unions are ported"
        spec["nullable"] = True
    if isinstance(kind, msgspec.inspect.StrType):
        assert kind.pattern is None, "string patterns are not ported to signals.js"
        spec.update(kind="str", min_length=kind.min_length, max_length=kind.max_length)
    elif isinstance(kind, msgspec.inspect.BytesType):
        spec.update(kind="bytes", min_length=kind.min_length, max_length=kind.max_length)
    elif isinstance(kind, msgspec.inspect.LiteralType):
        spec.update(kind="literal", values=list(kind.values))
    elif isinstance(kind, msgspec.inspect.IntType):
        assert (kind.gt, kind.ge, kind.lt, kind.le, kind.multiple_of) == (None,) * 5, "int bounds not ported"
        spec["kind"] = "int"
    else:
        raise AssertionError(f"signals.js has no port of {kind!r}")
    if not field.required:
        spec["default"] = field.default
    return {k: v for k, v in spec.items() if v is not None or k == "default"}


def signal_schema() -> dict[str, Any]:
    union = msgspec.inspect.type_info(PeerSignal)
    assert isinstance(union, msgspec.inspect.UnionType)
    out = {}
    for struct_type in union.types:
        assert isinstance(struct_type, msgspec.inspect.StructType) and struct_type.tag_field == "t"
        assert struct_type.forbid_unknown_fields and not struct_type.array_like
        out[str(struct_type.tag)] = [field_spec(f) for f in struct_type.fields]
    return out


# -- frames --------------------------------------------------------------------------------------


TID = "0123456789abcdef"


def header(magic: int = 0xBE, version: int = 1, offset: int = 0, tid: str = TID) -> bytes:
    return struct.pack(">BB8sQ", magic, version, bytes.fromhex(tid), offset)


def frames() -> dict[str, Any]:
    encoded = [
        {"transfer_id": t, "offset": o, "payload": p.hex(), "frame": encode_frame(t, o, p).hex()}
        for t, o, p in ((TID, 0x0102030405, b"xyz"), ("ffffffffffffffff", MAX_FILE_BYTES - 1, b"\x00"),
                        ("00000000000000ff", 0, bytes(range(256))))
    ]
    refusals = (("empty payload", TID, 0, 0), ("payload over the cap", TID, 0, MAX_PAYLOAD + 1),
                ("short id", "abcd", 0, 1), ("id not hex", "0123456789abcdeg", 0, 1),
                ("offset past the largest file", TID, MAX_FILE_BYTES, 1), ("negative offset", TID, -1, 1))
    for why, tid, offset, size in refusals:
        try:
            encode_frame(tid, offset, b"x" * size)
        except ValueError:
            continue
        raise AssertionError(f"encode_frame accepted {why}")
    refused = [{"why": w, "transfer_id": t, "offset": o, "payload_len": n} for w, t, o, n in refusals]
    # data = bytes.fromhex(head) + b"x" * fill, so that 64 KiB cases stay small in the file.
    shapes = [
        ("a byte of payload", header(), 1), ("at the cap", header(offset=7), MAX_PAYLOAD),
        ("last byte of the largest file", header(offset=MAX_FILE_BYTES - 1, tid="ffffffffffffffff"), 1),
        ("empty", b"", 0), ("half a header", header()[:10], 0),
        ("a header and no payload", header(), 0),
        ("JSON sent as binary", header(magic=0x7B), 1), ("version 2", header(version=2), 1),
        ("offset at the largest file size", header(offset=MAX_FILE_BYTES), 1),
        ("offset 2**64-1", header(offset=2**64 - 1), 1), ("one byte over 64 KiB", header(), MAX_PAYLOAD + 1),
    ]
    decoded = []
    for why, head, fill in shapes:
        outcome: dict[str, Any] = {"why": why, "head": head.hex(), "fill": fill}
        try:
            frame = decode_frame(head + b"x" * fill)
            outcome["frame"] = {"transfer_id": frame.transfer_id, "offset": frame.offset, "end": frame.end}
        except FrameError as exc:
            outcome["error"] = {"code": str(exc.code), "message": exc.message}
        decoded.append(outcome)
    return {"max_frame_bytes": MAX_FRAME_BYTES, "max_file_bytes": MAX_FILE_BYTES,
            "encoded": encoded, "refused": refused, "decoded": decoded}


# -- links ---------------------------------------------------------------------------------------


LINK_SECRET, LINK_KEY = seq(32, 0x11), seq(32, 0x99)
TOKEN = "AQE" + "x" * 40 + "_-"
FRAG = f"1.{TOKEN}.{b64u_encode(LINK_SECRET)}.{b64u_encode(LINK_KEY)}"
# Origins (scheme://netloc) around urlsplit's and ipaddress's corners; each gets "/p#" + FRAG.
ORIGINS = [
    "https://beam.example", "HtTpS://BEAM.Example", "https://beam.example:", "https://beam.example:0",
    "https://beam.example:08080", "https://beam.example:65535", "https://beam.example:65536",
    "https://beam.example:+80", "https://beam.example:80:90", "https://beam.example:８０",
    "https://@beam.example", "https://beam.example@", "https://u:p@beam.example", "https://:80",
    "https:beam.example", "https:/beam.example", "//beam.example", "1https://beam.example",
    "ht+tp://beam.example", "https://beam..example", "https://-beam.example", "https://beam.example.",
    "https://beam.example-", "https://a" + "b" * 252, "https://" + "a" * 254, "https://_beam.example",
    "https://[::1]", "https://[::1]:8443", "https://[::1]:", "https://[::1]:8443x", "https://[::1]x:80",
    "https://a[::1]", "https://[::1]]", "https://[[::1]", "https://[::1", "https://::1]",
    "https://[2001:DB8::1]", "https://[2001:db8:0:0:0:0:0:1]", "https://[2001:db8:0:0:0:0:0:0:1]",
    "https://[2001:db8::0:0:0:0:0:1]", "https://[1:2:3:4:5:6:7::]", "https://[::2:3:4:5:6:7:8]",
    "https://[::]", "https://[:::]", "https://[1::2::3]", "https://[:1::2]", "https://[1::2:]",
    "https://[1:2:3:4:5:6:7]", "https://[12345::1]", "https://[g::1]", "https://[::ffff:1.2.3.4]",
    "https://[::ffff:01.2.3.4]", "https://[::ffff:1.2.3]", "https://[::ffff:256.2.3.4]",
    "https://[1:2:3:4:5:6:1.2.3.4]", "https://[1:2:3:4:5:6:7:1.2.3.4]", "https://[1.2.3.4]",
    "https://[v1.x]", "ftp://[v1.x]", "https://[v1.]", "https://[vg.x]", "https://[::1%eth0]",
    "ftp://[::1%eth0]", "https://[::1%]", "ftp://[::1%a%b]", "https://[fe80::1%25en0]",
    "https://192.0.2.7", "https://192.0.2.7:8080", "https://999.0.2.7", "https://beam%2eexample",
    "javascript://beam.example", "ftp://beam.example", "https://beam.example\\@evil.example",
    "https://beam.example;x", "https://beam.example%40evil.example",
]
# Whole links: the path, query and fragment rules, lengths, and characters.
LINKS = [
    f"https://beam.example/P#{FRAG}", f"https://beam.example//p#{FRAG}", f"https://beam.example/./p#{FRAG}",
    f"https://beam.example/p?#{FRAG}", f"https://beam.example/p#{FRAG}?x", f"https://beam.example/p#{FRAG}#",
    f"https://beam.example/p#{FRAG}.", f"https://beam.example/p#1.{'A' * 256}.{FRAG.split('.', 2)[2]}",
    f"https://beam.example/p#1.{'A' * 257}.{FRAG.split('.', 2)[2]}",
    f"https://beam.example/p#1..{FRAG.split('.', 2)[2]}",
    f"https://beam.example/p#1.{TOKEN}.{b64u_encode(LINK_SECRET)}A.{b64u_encode(LINK_KEY)}",
    f"https://beam.example/p#1.{TOKEN}.{b64u_encode(LINK_SECRET)[:-1]}.{b64u_encode(LINK_KEY)}",
    f"https://beam.example/p#1.{TOKEN}.{b64u_encode(LINK_SECRET)[:-1]}B.{b64u_encode(LINK_KEY)}",
    f"https://beam.example/p#1.{TOKEN}..{b64u_encode(LINK_KEY)}", "https://beam.example/p",
    "https://beam.example/p#", f"https://beam.example/p#{FRAG}\u00e9", f"https://beam.example/p#{FRAG}\ud800",
    f"https://beam.example/p#{FRAG}\t", "", "h", "#",
    # 2048 code points in 2058 UTF-16 units: Python counts code points, so does the port.
    f"https://beam.example/p#{FRAG}" + "A" * (2048 - 10 - len(f"https://beam.example/p#{FRAG}")) + "\U0001F600" * 10,
    f"https://beam.example/p#{FRAG}" + "A" * (2048 - len(f"https://beam.example/p#{FRAG}")),
    f"https://beam.example/p#{FRAG}" + "A" * (2049 - len(f"https://beam.example/p#{FRAG}")),
]
MUTATION_CHARS = "/:@[]?#%.-_~+=;!$&'()*,\\0123456789abcdefvABCDEFxyz \t\u00e9"


def link_outcome(url: str) -> dict[str, Any]:
    try:
        link = parse_link(url)
    except LinkError as exc:
        return {"url": url, "error": exc.message}
    return {"url": url, "origin": link.origin, "token": link.token, "secret": link.secret.hex(),
            "agent_key": link.agent_key.hex()}


def links() -> list[dict[str, Any]]:
    urls = [f"{origin}/p#{FRAG}" for origin in ORIGINS] + LINKS
    rng = random.Random(20240611)
    bases = urls[:]
    for _ in range(300):
        url = rng.choice(bases)
        for _ in range(rng.randint(1, 3)):
            # Mostly in the scheme and netloc, where the parsing rules are.
            position = rng.randint(0, min(len(url), 40)) if rng.random() < 0.8 else rng.randint(0, len(url))
            cut = rng.choice((0, 0, 1, 2, 5))
            insert = "".join(rng.choice(MUTATION_CHARS) for _ in range(rng.choice((0, 1, 1, 2, 3))))
            url = url[:position] + insert + url[position + cut:]
        urls.append(url)
    unique = list(dict.fromkeys(urls))
    return [link_outcome(url) for url in unique]


# -- small parsers and numbers -------------------------------------------------------------------


FP = ":".join(f"{b:02X}" for b in seq(32, 0xA5))


def fingerprints() -> list[dict[str, Any]]:
    inputs = [
        "\u017fha-256 " + FP, "\x1csha-256 " + FP + "\x85", "\ufeffsha-256 " + FP, "sha-256\u3000" + FP,
        "sha-256\x1f" + FP, "sha-256\u200b" + FP, "SHA-256 " + FP.lower(), "Sha-256\t\n" + FP,
        "sha-256 " + FP.replace("A5", "\uff21\uff15", 1), "sha\u2010256 " + FP, "sha-256 " + FP + "\u2028",
        "sha-256" + " " * (200 - 7 - len(FP)) + FP, "sha-256" + " " * (201 - 7 - len(FP)) + FP,
        "sha-256" + "\u3000" * (200 - 7 - len(FP)) + FP,
    ]
    out: list[dict[str, Any]] = []
    for value in inputs:
        try:
            out.append({"input": value, "output": normalise_fingerprint(value)})
        except CryptoError as exc:
            out.append({"input": value, "output": None, "code": exc.code})
    return out


def transfer_ids() -> list[dict[str, Any]]:
    secret, digest = seq(32, 0x80), "2cf24dba5fb0a30e26e83b2ac5b9e29e1b161e5c1fa7425e73043362938b9824"
    return [{"pair_secret": secret.hex(), "sha256": digest, "size": size, "name": name,
             "id": kdf.transfer_id(secret, digest, size, name).hex()}
            for size, name in ((5, "hello.txt"), (0, ""),
                               (MAX_FILE_BYTES, "\u00dcn\u00efc\u00f6d\u00e9 \U0001F4F7.heic"))]


def floor_cases(period: float) -> list[float]:
    # Around boundaries, and large values where Math.floor(a / b) rounds up past Python's a // b.
    near = [k * period + d for k in (1, 19_675, 2_833_333) for d in (-1e-6, 0.0, 1e-6)]
    large = [9.406930873135739e16, 8.663710245837419e16, 1.0e17 + 600.0, 2.0**60]
    return [0.0, -0.5, -period, 86399.999, 1_700_000_000.5] + near + large


# -- the file ------------------------------------------------------------------------------------


def build() -> dict[str, Any]:
    paired = pairing()
    return {
        "generator": "tests/vectors/make_session_vectors.py (records the Python code's output)",
        "signal_schema": signal_schema(),
        "pairing": paired,
        "reconnect": reconnect(bytes.fromhex(paired["pair_secret"])),
        "aborts": aborts(),
        "frames": frames(),
        "links": links(),
        "fingerprints": fingerprints(),
        "transfer_id": transfer_ids(),
        "day_of": [{"now": t, "day": kdf.day_of(t)} for t in floor_cases(kdf.RENDEZVOUS_PERIOD)],
        "lan_epoch_of": [{"now": t, "epoch": kdf.lan_epoch_of(t)} for t in floor_cases(kdf.LAN_EPOCH_PERIOD)],
    }


def render(doc: dict[str, Any]) -> str:
    return json.dumps(doc, indent=2) + "\n"


if __name__ == "__main__":
    PATH.write_text(render(build()))
