"""Pairing records and the identity key, on disk under the config dir, readable by the user only.

Writes go to a temporary file that is renamed over the old one, so a crash never leaves half a
record behind; files and the directory are created 0600 / 0700 (DESIGN: Pairing step 6).
"""

from __future__ import annotations

import os
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import msgspec
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey

from crypto.keys import generate_identity, load_private, private_bytes
from crypto.records import PairingRecord, decode_records, encode_records


def _write_private(path: Path, data: bytes) -> None:
    path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
    try:
        os.fchmod(fd, 0o600)
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        os.unlink(tmp)
        raise


def load_identity(path: Path) -> X25519PrivateKey:
    """The device's long-term X25519 key, created on first use."""
    try:
        return load_private(path.read_bytes())
    except FileNotFoundError:
        key = generate_identity()
        _write_private(path, private_bytes(key))
        return key


# A tombstone that has not been able to tell its device within this time is dropped.
TOMBSTONE_LIFETIME = 30 * 86400.0


class PairingBook:
    """All pairings of this device. Small (a handful of records): read and written whole.

    ``load`` returns live pairings and tombstones (records removed here while the other
    device was away); ``active`` and ``find`` only live ones.
    """

    def __init__(self, path: Path) -> None:
        self.path = path

    def load(self, now: float | None = None) -> list[PairingRecord]:
        try:
            data = self.path.read_bytes()
        except FileNotFoundError:
            return []
        now = time.time() if now is None else now
        return [r for r in decode_records(data) if r.removed_at is None or now - r.removed_at < TOMBSTONE_LIFETIME]

    def active(self) -> list[PairingRecord]:
        return [r for r in self.load() if r.removed_at is None]

    def get(self, peer_key: bytes) -> PairingRecord | None:
        """The record for this key, tombstone or not."""
        for record in self.load():
            if record.peer_key == peer_key:
                return record
        return None

    def _save(self, records: list[PairingRecord]) -> None:
        _write_private(self.path, encode_records(records))

    def find(self, name: str) -> PairingRecord | None:
        for record in self.active():
            if record.peer_name == name:
                return record
        return None

    def find_key(self, peer_key: bytes) -> PairingRecord | None:
        record = self.get(peer_key)
        return record if record is not None and record.removed_at is None else None

    def put(self, record: PairingRecord) -> None:
        """Add or replace the record for the same peer key (re-pairing replaces)."""
        records = [r for r in self.load() if r.peer_key != record.peer_key]
        records.append(record)
        self._save(records)

    def update(self, peer_key: bytes, change: Callable[[PairingRecord], PairingRecord]) -> None:
        records = [change(r) if r.peer_key == peer_key else r for r in self.load()]
        self._save(records)

    def touch(self, peer_key: bytes, now: float) -> None:
        self.update(peer_key, lambda r: msgspec.structs.replace(r, last_seen=now))

    def bury(self, peer_key: bytes, now: float) -> None:
        """Remove a pairing whose device could not be told: keep a tombstone to tell it later."""
        self.update(peer_key, lambda r: msgspec.structs.replace(r, removed_at=now))

    def remove(self, peer_key: bytes) -> bool:
        records = self.load()
        kept = [r for r in records if r.peer_key != peer_key]
        if len(kept) == len(records):
            return False
        self._save(kept)
        return True
