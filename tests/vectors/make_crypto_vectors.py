"""Writes tests/vectors/{tokens,kdf,binding,link}.json: shared vectors for Python and the browser.

The expected values are computed here from the primitives (RFC 5869 HKDF written out with hmac,
AES-GCM over the documented token layout), not by calling crypto/, so the vectors pin the
documented constructions rather than whatever the code happens to do. Deterministic: fixed
inputs, no randomness. Run: .venv/bin/python tests/vectors/make_crypto_vectors.py
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import struct
from pathlib import Path
from typing import Any

from cryptography.hazmat.primitives.ciphers.aead import AESGCM

HERE = Path(__file__).parent
PREFIX = b"peerbeam/v1 "


def b64u(b: bytes) -> str:
    return base64.urlsafe_b64encode(b).rstrip(b"=").decode()


def hkdf(secret: bytes, info: bytes, length: int) -> bytes:
    # RFC 5869 §2.2-2.3 with an empty salt (= HashLen zero bytes).
    prk = hmac.new(b"\x00" * 32, secret, hashlib.sha256).digest()
    out, block, counter = b"", b"", 1
    while len(out) < length:
        block = hmac.new(prk, block + info + bytes([counter]), hashlib.sha256).digest()
        out += block
        counter += 1
    return out[:length]


def info(purpose: str, context: bytes = b"") -> bytes:
    return PREFIX + purpose.encode() + b"\x00" + context


def seq(n: int, start: int = 0) -> bytes:
    return bytes((start + i) % 256 for i in range(n))


def write(name: str, doc: dict[str, Any]) -> None:
    (HERE / name).write_text(json.dumps(doc, indent=2) + "\n")


def tokens() -> dict[str, Any]:
    keys = {1: seq(32, 0x10), 7: seq(32, 0x70)}
    aad_label = b"peerbeam token\x00"

    def seal(kid: int, nonce: bytes, room: bytes, token_id: bytes, expires_ms: int,
             version: int = 1, inner_version: int = 1) -> str:
        plaintext = struct.pack(">B16s16sQ", inner_version, room, token_id, expires_ms)
        sealed = AESGCM(keys.get(kid, seq(32, 0xEE))).encrypt(
            nonce, plaintext, aad_label + bytes((version, kid)))
        return b64u(bytes((version, kid)) + nonce + sealed)

    room, token_id = seq(16, 0xA0), seq(16, 0xC0)
    valid = []
    for kid, nonce_start, exp_ms in ((1, 0x00, 1_700_000_120_000), (7, 0x30, 1_700_000_120_123)):
        valid.append({
            "token": seal(kid, seq(12, nonce_start), room, token_id, exp_ms),
            "now": 1_700_000_000.0,
            "claims": {"version": 1, "room": room.hex(), "token_id": token_id.hex(),
                       "expires_at": exp_ms / 1000},
        })
    good = valid[0]["token"]
    invalid = [
        {"why": "expired: now == expires_at", "token": good, "now": 1_700_000_120.0,
         "code": "token_expired"},
        {"why": "expired: later", "token": good, "now": 1_800_000_000.0, "code": "token_expired"},
        {"why": "unknown kid", "token": seal(9, seq(12), room, token_id, 1_700_000_120_000),
         "now": 1_700_000_000.0, "code": "bad_token"},
        {"why": "header version 2", "token": seal(1, seq(12), room, token_id, 1_700_000_120_000,
                                                  version=2, inner_version=2),
         "now": 1_700_000_000.0, "code": "bad_token"},
        {"why": "inner version differs from header",
         "token": seal(1, seq(12), room, token_id, 1_700_000_120_000, inner_version=2),
         "now": 1_700_000_000.0, "code": "bad_token"},
        {"why": "padding", "token": good + "=", "now": 1_700_000_000.0, "code": "bad_token"},
        {"why": "standard base64 alphabet", "token": good.replace("-", "+").replace("_", "/")
         if ("-" in good or "_" in good) else good[:-1] + "+", "now": 1_700_000_000.0,
         "code": "bad_token"},
        {"why": "truncated", "token": good[:-2], "now": 1_700_000_000.0, "code": "bad_token"},
        {"why": "empty", "token": "", "now": 1_700_000_000.0, "code": "bad_token"},
        {"why": "too long", "token": "A" * 257, "now": 1_700_000_000.0, "code": "bad_token"},
        {"why": "last character changed", "token": good[:-1] + ("A" if good[-1] != "A" else "B"),
         "now": 1_700_000_000.0, "code": "bad_token"},
    ]
    return {
        "format": "b64url(version | kid | nonce12 | AESGCM(key[kid], nonce, version|room16|"
                  "token_id16|expires_ms_u64be, aad = 'peerbeam token\\0' | version | kid))",
        "keys": {str(k): v.hex() for k, v in keys.items()},
        "current_kid": 1,
        "valid": valid,
        "invalid": invalid,
    }


def kdf() -> dict[str, Any]:
    secret = seq(32, 0x01)
    derive = [
        {"secret": secret.hex(), "purpose": p, "length": n, "context": c.hex(),
         "output": hkdf(secret, info(p, c), n).hex()}
        for p, n, c in (("pair", 32, b""), ("rid", 32, (19000).to_bytes(8, "big")),
                        ("example purpose", 64, b"ctx"), ("short", 8, b""))
    ]
    ck, ps, hh = seq(32, 0x40), seq(32, 0x80), seq(32, 0xC0)
    codes = []
    for h in (hh, seq(32, 0x00), hashlib.sha256(b"peerbeam").digest()):
        n = int.from_bytes(hkdf(h, info("comparison code"), 8), "big") % 10**6
        codes.append({"handshake_hash": h.hex(), "code": f"{n:06d}"})
    return {
        "info": "HKDF-SHA256, salt empty, info = 'peerbeam/v1 ' | purpose | 0x00 | context",
        "derive_key": derive,
        "pairing_psk": [{"qr_secret": secret.hex(),
                         "psk": hkdf(secret, info("pairing psk"), 32).hex()}],
        "pair_secret": [{"chaining_key": ck.hex(), "pair_secret": hkdf(ck, info("pair"), 32).hex()}],
        "reconnect_psk": [{"pair_secret": ps.hex(),
                           "psk": hkdf(ps, info("reconnect psk"), 32).hex()}],
        "rendezvous_id": [
            {"pair_secret": ps.hex(), "day": d,
             "rid": hkdf(ps, info("rid", d.to_bytes(8, "big")), 32).hex()}
            for d in (0, 19675, 19676)
        ],
        "lan_tag": [
            {"pair_secret": ps.hex(), "epoch": e,
             "tag": hmac.new(ps, info("lan", e.to_bytes(8, "big")), hashlib.sha256).digest()[:8].hex()}
            for e in (0, 2_833_333, 2_833_334)
        ],
        "comparison_code": codes,
        "day_of": [{"now": t, "day": int(t // 86400)} for t in (0.0, 86399.999, 86400.0, 1_700_000_000.5)],
        "lan_epoch_of": [{"now": t, "epoch": int(t // 600)} for t in (0.0, 599.9, 600.0, 1_700_000_000.5)],
    }


def fp(start: int) -> str:
    return ":".join(f"{b:02X}" for b in seq(32, start))


def binding() -> dict[str, Any]:
    key, hh = seq(32, 0x33), seq(32, 0x55)
    cases = []
    for role, local, remote in (("initiator", fp(0x10), fp(0x90)), ("responder", fp(0x90), fp(0x10))):
        fields = (role.encode(), hh, bytes.fromhex(local.replace(":", "")),
                  bytes.fromhex(remote.replace(":", "")))
        msg = b"peerbeam/v1 dtls binding\x00" + b"".join(len(f).to_bytes(2, "big") + f for f in fields)
        cases.append({"key": key.hex(), "role": role, "handshake_hash": hh.hex(),
                      "local_fp": local, "remote_fp": remote,
                      "mac": hmac.new(key, msg, hashlib.sha256).hexdigest()})
    return {
        "encoding": "HMAC-SHA256(key, 'peerbeam/v1 dtls binding\\0' | u16be len | role | u16be len"
                    " | handshake_hash | u16be len | local fp (32 raw bytes) | u16be len | remote fp)",
        "binding_key": [{"chaining_key": seq(32, 0x40).hex(),
                         "key": hkdf(seq(32, 0x40), info("dtls binding"), 32).hex()}],
        "mac": cases,
        "normalise_good": [
            {"input": "sha-256 " + fp(0x10).lower(), "output": fp(0x10)},
            {"input": "SHA-256 " + fp(0x10), "output": fp(0x10)},
            {"input": fp(0xAB).lower(), "output": fp(0xAB)},
            {"input": "  sha-256   " + fp(0x00) + " ", "output": fp(0x00)},
        ],
        "normalise_bad": [
            "", "sha-1 " + ":".join(["AB"] * 20), "sha-256 " + ":".join(["AB"] * 31),
            "sha-256 " + ":".join(["AB"] * 33), "sha-256 " + fp(0x10).replace(":", ""),
            "sha-512 " + fp(0x10), "sha-256 " + fp(0x10)[:-1] + "G", "sha-256" + fp(0x10),
            fp(0x10) + ":", "sha-256 " + fp(0x10) + " extra",
        ],
    }


def link() -> dict[str, Any]:
    secret, key = seq(32, 0x11), seq(32, 0x99)
    token = "AQE" + "x" * 40 + "_-"
    frag = f"1.{token}.{b64u(secret)}.{b64u(key)}"
    good = [
        {"url": f"https://beam.example/p#{frag}", "origin": "https://beam.example"},
        {"url": f"http://192.0.2.7:8080/p#{frag}", "origin": "http://192.0.2.7:8080"},
        {"url": f"https://[2001:db8::1]:8443/p#{frag}", "origin": "https://[2001:db8::1]:8443"},
        {"url": f"HTTPS://Beam.Example/p#{frag}", "origin": "https://beam.example"},
    ]
    for g in good:
        g.update({"token": token, "secret": secret.hex(), "agent_key": key.hex()})
    bad_secret = b64u(secret)[:-1] + ("B" if b64u(secret)[-1] != "B" else "C")  # stray low bits?
    bad = [
        ("ftp scheme", f"ftp://beam.example/p#{frag}"),
        ("javascript scheme", f"javascript:alert(1)//p#{frag}"),
        ("no fragment", "https://beam.example/p"),
        ("wrong path", f"https://beam.example/pair#{frag}"),
        ("path with slash", f"https://beam.example/p/#{frag}"),
        ("query", f"https://beam.example/p?x=1#{frag}"),
        ("userinfo", f"https://user@beam.example/p#{frag}"),
        ("version 2", f"https://beam.example/p#2{frag[1:]}"),
        ("three fields", f"https://beam.example/p#1.{token}.{b64u(secret)}"),
        ("five fields", f"https://beam.example/p#{frag}.x"),
        ("short secret", f"https://beam.example/p#1.{token}.{b64u(secret[:31])}.{b64u(key)}"),
        ("long key", f"https://beam.example/p#1.{token}.{b64u(secret)}.{b64u(key + b'x')}"),
        ("padded secret", f"https://beam.example/p#1.{token}.{b64u(secret)}=.{b64u(key)}"),
        ("token with bad char", f"https://beam.example/p#1.tok+en.{b64u(secret)}.{b64u(key)}"),
        ("empty token", f"https://beam.example/p#1..{b64u(secret)}.{b64u(key)}"),
        ("token too long", f"https://beam.example/p#1.{'A' * 257}.{b64u(secret)}.{b64u(key)}"),
        ("space", f"https://beam.example/p #{frag}"),
        ("newline", f"https://beam.example/p\n#{frag}"),
        ("non-ascii host", f"https://bëam.example/p#{frag}"),
        ("percent in host", f"https://beam%2eexample/p#{frag}"),
        ("bad port", f"https://beam.example:99999/p#{frag}"),
        ("too long", f"https://beam.example/p#{frag}" + "A" * 2048),
        ("no host", f"https:///p#{frag}"),
    ]
    if bad_secret != b64u(secret):
        bad.append(("non-canonical base64", f"https://beam.example/p#1.{token}.{bad_secret}.{b64u(key)}"))
    return {"good": good, "bad": [{"why": w, "url": u} for w, u in bad]}


if __name__ == "__main__":
    write("tokens.json", tokens())
    write("kdf.json", kdf())
    write("binding.json", binding())
    write("link.json", link())
