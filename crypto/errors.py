"""Errors raised by the crypto package.

One base class, :class:`CryptoError`; each error carries a stable ``code`` (for the wire and for
scripts) and a ``message`` that is a sentence for people (magic-wormhole style: the docstring of
each subclass is the sentence the user sees by default).
"""

from __future__ import annotations

from typing import ClassVar


class CryptoError(Exception):
    """A cryptographic check failed."""

    code: str = "crypto_error"

    def __init__(self, message: str | None = None) -> None:
        self.message: str = message if message is not None else _default_message(type(self))
        super().__init__(self.message)

    def __str__(self) -> str:
        return self.message


def _default_message(cls: type[CryptoError]) -> str:
    # The docstring's first paragraph, on one line, is the default sentence.
    doc = cls.__doc__ or "A cryptographic check failed."
    return " ".join(doc.strip().split("\n\n", 1)[0].split())


class TokenError(CryptoError):
    """This pairing code is not valid."""

    _MESSAGES: ClassVar[dict[str, str]] = {
        "bad_token": "This pairing code is not valid.",
        "token_expired": "This pairing code has expired: scan the new one.",
    }

    def __init__(self, code: str, message: str | None = None) -> None:
        if code not in self._MESSAGES:
            raise ValueError(f"unknown TokenError code {code!r}")
        # Instance attribute shadows the class-level default: the code depends on the failure.
        self.code = code
        super().__init__(message if message is not None else self._MESSAGES[code])

    def __reduce__(self) -> tuple[type[TokenError], tuple[str, str]]:
        # Exceptions pickle as cls(*args); ours takes the code first.
        return (TokenError, (self.code, self.message))


class NoiseError(CryptoError):
    """The secure handshake failed: the connection may have been intercepted."""

    code = "interception"


class LinkError(CryptoError):
    """This pairing link is not valid."""

    code = "bad_link"


class BindingError(CryptoError):
    """The secure channel does not match the handshake: the connection may have been intercepted."""

    code = "interception"
