"""Seal a mini program's legacy ``encryptedData`` the way WeChat does, so apps can test opening it.

AES-128-CBC with PKCS#7 padding, keyed with the user's latest ``session_key``: the
reverse of :func:`flask_wechat.serverapi.decrypt_user_data`. ``cryptography`` (which
Authlib requires) is imported on first use, so the fake itself starts without it.
"""

from __future__ import annotations

import base64
import json
import secrets
from collections.abc import Mapping

__all__ = ["encrypt_user_data"]


def encrypt_user_data(session_key: str, data: Mapping[str, object], iv: bytes | None = None) -> tuple[str, str]:
    """``(encryptedData, iv)`` in base64: ``data`` as compact UTF-8 JSON, sealed with ``session_key``.

    ``iv`` (16 bytes) is random unless given, as for each real button press.
    """
    from cryptography.hazmat.primitives import padding
    from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes

    key = base64.b64decode(session_key, validate=True)
    vector = secrets.token_bytes(16) if iv is None else iv
    if len(key) != 16 or len(vector) != 16:
        raise ValueError("the session key and the iv must be 16 bytes each")
    plain = json.dumps(data, ensure_ascii=False, separators=(",", ":")).encode("utf-8")
    padder = padding.PKCS7(128).padder()
    padded = padder.update(plain) + padder.finalize()
    encryptor = Cipher(algorithms.AES(key), modes.CBC(vector)).encryptor()
    sealed = encryptor.update(padded) + encryptor.finalize()
    return base64.b64encode(sealed).decode("ascii"), base64.b64encode(vector).decode("ascii")
