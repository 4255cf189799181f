"""Where received files land: safe names, no overwrites, and the ``.part`` file being written.

Every offered name is hostile (DESIGN "Hardening"): ``safe_name`` reduces it to one base name
that is valid and harmless on Linux, macOS and Windows. A transfer writes ``<name>.part``
(mode 0600); a small sidecar ``.peerbeam/<transfer id>.json`` names its transfer id, sha-256 and
final name, so that the same offer after a reconnect finds its prefix and resumes. Sidecars live
in a dot-folder because no received file can ever be called that (``safe_name`` drops leading
dots): a sender cannot plant a sidecar by sending a file. The ``.part`` becomes the
final (unique) name only when the sha-256 of its bytes matches the offer; on a mismatch, a
cancel or a full disk it is removed — nothing half-written ever looks received.

All calls are blocking file I/O; the asyncio shell runs the slow ones (``open``'s re-hash of a
resumed prefix, ``commit``'s fsync) in a thread.
"""

from __future__ import annotations

import errno
import hashlib
import hmac
import itertools
import logging
import os
import re
import stat
import unicodedata
from pathlib import Path
from collections.abc import Iterator
from typing import TYPE_CHECKING, Final, NoReturn

import msgspec

from signaling.schema import ErrorCode, TransferOffer

from .errors import PeerbeamError

if TYPE_CHECKING:
    from hashlib import _Hash

logger = logging.getLogger(__name__)

MAX_NAME_BYTES: Final = 255  # NAME_MAX on Linux and most file systems, counted in UTF-8 bytes
FALLBACK_NAME: Final = "download"
PART_SUFFIX: Final = ".part"
INDEX_FOLDER: Final = ".peerbeam"
# Room kept under NAME_MAX for " (9999)" and ".part" on a final name.
_RESERVE_BYTES: Final = len(" (9999)") + len(PART_SUFFIX)

# "/" and "\" plus characters that look like them: a name like "..∕..∕x" must not read as a
# path to a person (or to a tool that normalises with NFKC later).
_SEPARATORS: Final = "/\\\u2215\u2044\u29f8\u29f9\u2216\ufe68\uff0f\uff3c"
_SPLIT = re.compile(f"[{re.escape(_SEPARATORS)}]")
# Refused in Windows names (and ":" opens NTFS alternate data streams).
_WINDOWS_FORBIDDEN = re.compile(r'[<>:"|?*]')
# Windows reserves these device names with any extension ("con.txt", "NUL.tar.gz"), in any
# case, and since Windows 10 also with superscript digits (COM¹).
_RESERVED: Final = frozenset(
    {"CON", "PRN", "AUX", "NUL", "CONIN$", "CONOUT$"}
    | {f"{dev}{digit}" for dev in ("COM", "LPT") for digit in "0123456789¹²³"}
)
# Control (Cc), format (Cf: e.g. U+202E RIGHT-TO-LEFT OVERRIDE, which turns "gpj.exe" into
# what looks like an image), lone surrogates (Cs) and line/paragraph separators.
_DROPPED_CATEGORIES: Final = frozenset({"Cc", "Cf", "Cs", "Zl", "Zp"})
_MAX_EXTENSION_CHARS: Final = 16


class DownloadError(PeerbeamError):
    """The received file could not be written."""


class DiskFull(DownloadError):
    """The disk is full: the transfer was stopped and the partial file removed."""

    code = ErrorCode.DISK_FULL


class HashMismatch(DownloadError):
    """The file arrived damaged (its sha-256 does not match the offer) and was removed."""

    code = ErrorCode.HASH_MISMATCH
    remote = True


def _split_extension(name: str) -> tuple[str, str]:
    stem, dot, ext = name.rpartition(".")
    if not dot or not stem or len(ext) > _MAX_EXTENSION_CHARS:
        return name, ""
    return stem, "." + ext


def _fit(stem: str, ext: str, max_bytes: int) -> str:
    """``stem + ext`` in at most ``max_bytes`` UTF-8 bytes, cutting the stem, never mid-character."""
    room = max_bytes - len(ext.encode())
    if room < 1:  # an absurd extension: keep bytes of the whole name instead
        stem, ext, room = stem + ext, "", max_bytes
    cut = stem.encode()[:room].decode(errors="ignore").rstrip(" .")
    return (cut or FALLBACK_NAME) + ext


def safe_name(name: str, max_bytes: int = MAX_NAME_BYTES) -> str:
    """One safe base name for any offered name: never empty, never a path, never reserved."""
    name = unicodedata.normalize("NFC", name)
    # The last component only: "../x", "/etc/passwd", "C:\\x" and "\\\\server\\share\\x" all give "x".
    parts = [part for part in _SPLIT.split(name) if part.strip(" .")]
    name = parts[-1] if parts else ""
    name = "".join(ch for ch in name if unicodedata.category(ch) not in _DROPPED_CATEGORIES)
    name = _WINDOWS_FORBIDDEN.sub("_", name)
    # Again: dropping a format character can bring a base letter and its accent together.
    name = unicodedata.normalize("NFC", name)
    # No hidden files (leading dots), and Windows drops trailing dots and spaces by itself.
    name = name.strip().strip(" .").strip()
    if not name:
        return FALLBACK_NAME
    stem, ext = _split_extension(name)
    if stem.split(".")[0].rstrip(" ").upper() in _RESERVED:
        stem = "_" + stem
    return _fit(stem, ext, max_bytes)


def _candidates(name: str) -> Iterator[str]:
    yield name
    stem, ext = _split_extension(name)
    for n in range(1, 10_000):
        yield _fit(stem, f" ({n}){ext}", MAX_NAME_BYTES - len(PART_SUFFIX))
    raise DownloadError("Too many files with this name in the downloads folder.")


def unique_path(folder: Path, name: str) -> Path:
    """``folder / name``, or "name (1).ext", "name (2).ext"... whichever is free (with its .part)."""
    for candidate in _candidates(name):
        path = folder / candidate
        # lexists: a dangling symlink is taken too; the .part of a transfer in progress as well.
        if not os.path.lexists(path) and not os.path.lexists(folder / (candidate + PART_SUFFIX)):
            return path
    raise AssertionError("unreachable")


class _Sidecar(msgspec.Struct, forbid_unknown_fields=True, frozen=True):
    id: str
    sha256: str
    size: int
    name: str  # the final name this .part is for


class PartFile:
    """``<final>.part`` inside the downloads folder, written in order, hashed as it grows."""

    def __init__(self, folder: Path, final_name: str, offer: TransferOffer, fd: int, size: int,
                 digest: _Hash) -> None:
        self.folder = folder
        self.final_name = final_name
        self.offer = offer
        self.offset = size
        self._fd: int | None = fd
        self._digest = digest
        self._digest_shared = False  # see share_digest()

    @property
    def path(self) -> Path:
        return self.folder / (self.final_name + PART_SUFFIX)

    @property
    def sidecar(self) -> Path:
        return _sidecar_path(self.folder, self.offer.id)

    def prefix_digest(self) -> _Hash:
        """A copy of the running sha-256, for ``IncomingTransfer(resume_digest=...)``."""
        return self._digest.copy()

    def share_digest(self) -> _Hash:
        """The running sha-256 itself, for a caller that hashes every byte it hands to
        ``write`` anyway, in the same order (``IncomingTransfer(resume_digest=...)`` does): from
        now on that caller updates it and ``write`` does not, so each byte is hashed once, not
        twice. ``commit`` still checks it. Writes stay checked for order (each must start where
        the file ends), so the bytes hashed are the bytes written."""
        self._digest_shared = True
        return self._digest

    @classmethod
    def open(cls, folder: Path, offer: TransferOffer) -> PartFile:
        """Resume the .part of the same transfer (same id, sha-256 and size) if there is one."""
        folder = folder.resolve()
        folder.mkdir(parents=True, exist_ok=True)
        return cls._resume(folder, offer) or cls._create(folder, offer)

    @classmethod
    def _create(cls, folder: Path, offer: TransferOffer) -> PartFile:
        final = unique_path(folder, safe_name(offer.name, MAX_NAME_BYTES - _RESERVE_BYTES))
        part = final.with_name(final.name + PART_SUFFIX)
        _check_inside(folder, part)
        # O_EXCL | O_NOFOLLOW: never reuse or follow anything that appeared under this name.
        fd = os.open(part, os.O_RDWR | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC, 0o600)
        self = cls(folder, final.name, offer, fd, 0, hashlib.sha256())
        try:
            self.sidecar.parent.mkdir(mode=0o700, exist_ok=True)
            data = msgspec.json.encode(_Sidecar(offer.id, offer.sha256, offer.size, final.name))
            sidecar_fd = os.open(self.sidecar, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_NOFOLLOW | os.O_CLOEXEC,
                                 0o600)
            with os.fdopen(sidecar_fd, "wb") as out:
                out.write(data)
        except OSError as exc:
            self._raise_write_error(exc)
        return self

    @classmethod
    def _resume(cls, folder: Path, offer: TransferOffer) -> PartFile | None:
        sidecar = _sidecar_path(folder, offer.id)
        try:
            meta = msgspec.json.decode(sidecar.read_bytes(), type=_Sidecar)
        except FileNotFoundError:
            return None
        except (OSError, msgspec.DecodeError):
            sidecar.unlink(missing_ok=True)
            return None
        part = folder / (meta.name + PART_SUFFIX)
        if safe_name(meta.name) != meta.name:
            sidecar.unlink(missing_ok=True)  # not one we wrote; do not follow it anywhere
            return None
        _check_inside(folder, part)
        try:
            fd = os.open(part, os.O_RDWR | os.O_NOFOLLOW | os.O_CLOEXEC)
        except OSError:
            sidecar.unlink(missing_ok=True)
            return None
        self = cls(folder, meta.name, offer, fd, 0, hashlib.sha256())
        info = os.fstat(fd)
        if ((meta.id, meta.sha256, meta.size) != (offer.id, offer.sha256, offer.size)
                or not stat.S_ISREG(info.st_mode) or info.st_size > offer.size):
            self.discard()  # a stale partial of another file under this id: start again
            return None
        # Re-hash what is on disk: the resume point is only as good as those bytes.
        done = 0
        while done < info.st_size:
            chunk = os.pread(fd, min(1 << 20, info.st_size - done), done)
            if not chunk:
                break
            self._digest.update(chunk)
            done += len(chunk)
        os.ftruncate(fd, done)
        self.offset = done
        logger.info("resuming transfer %s at %d of %d bytes", offer.id, done, offer.size)
        return self

    def write(self, offset: int, data: bytes) -> None:
        """Append ``data``, which must start where the file ends (the protocol checked order)."""
        if self._fd is None or offset != self.offset:
            raise DownloadError("Internal error: a write out of order.")
        view = memoryview(data)
        try:
            while view:
                written = os.pwrite(self._fd, view, offset)
                view, offset = view[written:], offset + written
        except OSError as exc:
            self._raise_write_error(exc)
        if not self._digest_shared:
            self._digest.update(data)
        self.offset = offset

    def commit(self) -> Path:
        """fsync, check the sha-256 ourselves, then give the file a final name that overwrites nothing."""
        if self._fd is None:
            raise DownloadError("Internal error: commit after close.")
        try:
            os.fsync(self._fd)
        except OSError as exc:
            self._raise_write_error(exc)
        self._close_fd()
        if self.offset != self.offer.size or not hmac.compare_digest(self._digest.hexdigest(), self.offer.sha256):
            self.discard()
            raise HashMismatch()
        final = self._link_final()
        self.path.unlink(missing_ok=True)
        self.sidecar.unlink(missing_ok=True)
        _fsync_dir(self.folder)
        logger.info("transfer %s saved (%d bytes)", self.offer.id, self.offset)
        return final

    def _link_final(self) -> Path:
        # A hard link fails with EEXIST instead of replacing, unlike rename(2): if a file took
        # the name since the offer, try the next free one.
        base = safe_name(self.offer.name, MAX_NAME_BYTES - _RESERVE_BYTES)
        for candidate in itertools.chain([self.final_name], _candidates(base)):
            final = self.folder / candidate
            try:
                os.link(self.path, final, follow_symlinks=False)
                return final
            except FileExistsError:
                continue
            except OSError as exc:
                if exc.errno not in (errno.EPERM, errno.ENOTSUP, errno.EOPNOTSUPP):
                    raise
                if os.path.lexists(final):
                    continue
                os.rename(self.path, final)  # no hard links here (FAT): checked just above
                return final
        raise AssertionError("unreachable")

    def discard(self) -> None:
        """Remove the .part and its sidecar (cancel, mismatch, failure). Idempotent."""
        self._close_fd()
        self.path.unlink(missing_ok=True)
        self.sidecar.unlink(missing_ok=True)

    def close(self) -> None:
        """Keep the .part for a later resume (the channel dropped)."""
        self._close_fd()

    def _close_fd(self) -> None:
        if self._fd is not None:
            fd, self._fd = self._fd, None
            os.close(fd)

    def _raise_write_error(self, exc: OSError) -> NoReturn:
        self.discard()
        if exc.errno in (errno.ENOSPC, errno.EDQUOT):
            raise DiskFull() from exc
        raise DownloadError(f"The file could not be written ({os.strerror(exc.errno or 0)}); "
                            "the partial file was removed.") from exc


def _sidecar_path(folder: Path, transfer_id: str) -> Path:
    # The id passed the schema's pattern (16 lower-case hex digits): safe as a file name.
    if not re.fullmatch("[0-9a-f]{16}", transfer_id):
        raise DownloadError("Internal error: a malformed transfer id.")
    return folder / INDEX_FOLDER / f"{transfer_id}.json"


def _check_inside(folder: Path, path: Path) -> None:
    if path.parent != folder or os.path.realpath(path.parent) != str(folder):
        raise DownloadError("Internal error: a download path outside the downloads folder.")


def _fsync_dir(folder: Path) -> None:
    fd = os.open(folder, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
