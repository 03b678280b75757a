"""Access and refresh tokens encrypted at rest, with key rotation (Fernet).

Off by default: encryption only helps when its key lives somewhere the database
does not (an environment variable, a secrets manager), and a key lost is every
stored token lost. WeChat tokens are short-lived (2 hours; refresh tokens 30 days),
so plaintext storage is a reasonable default for many sites; set
``WECHAT_TOKEN_KEYS`` when database dumps leave your control.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Final

from .errors import ConfigurationError

__all__ = ["TokenCipher"]

#: Marks a sealed value; values without it are plaintext from before encryption was on.
SEALED_PREFIX: Final = "fernet:"


class TokenCipher:
    """Seals tokens with the first key and opens them with any (``MultiFernet``)."""

    def __init__(self, keys: Sequence[str]) -> None:
        try:
            from cryptography.fernet import Fernet, MultiFernet
        except ImportError:  # pragma: no cover - the test extra installs it
            raise ConfigurationError(
                "WECHAT_TOKEN_KEYS needs the cryptography package: pip install 'flask-wechat[encryption]'"
            ) from None
        try:
            self._fernet = MultiFernet([Fernet(key) for key in keys])
        except (ValueError, TypeError):
            raise ConfigurationError(
                "WECHAT_TOKEN_KEYS must hold Fernet keys, e.g. from cryptography.fernet.Fernet.generate_key()"
            ) from None

    def seal(self, value: str) -> str:
        """The stored form of ``value``."""
        return SEALED_PREFIX + self._fernet.encrypt(value.encode()).decode()

    def open(self, stored: str) -> str | None:
        """The token a stored value holds; ``None`` when no configured key opens it."""
        if not stored.startswith(SEALED_PREFIX):
            return stored
        from cryptography.fernet import InvalidToken

        try:
            return self._fernet.decrypt(stored[len(SEALED_PREFIX) :].encode()).decode()
        except InvalidToken:
            return None

    def rotate(self, stored: str) -> str:
        """Re-seal ``stored`` with the first key (plaintext gets sealed)."""
        if not stored.startswith(SEALED_PREFIX):
            return self.seal(stored)
        return SEALED_PREFIX + self._fernet.rotate(stored[len(SEALED_PREFIX) :].encode()).decode()
