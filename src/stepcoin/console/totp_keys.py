"""TOTP secrets are stored encrypted (Fernet: AES-128-CBC + HMAC-SHA256), never in clear.

A copy of the database alone must not give away anyone's second factor. The keys come from
STEPCOIN_TOTP_KEYS (comma-separated, newest first: rotation adds a key in front, and old
secrets stay readable until re-encrypted or reset), or, when unset, are derived from the access
tokens' signing secret (STEPCOIN_JWT_SECRET, else the data directory's generated one: never a
value from the source). Each key string is stretched with HKDF-SHA256 into a Fernet key.
"""

from __future__ import annotations

import base64
from functools import lru_cache

from cryptography.fernet import Fernet, InvalidToken, MultiFernet
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from stepcoin.config import Settings

STORED_PREFIX = "fernet:"


class UnreadableSecret(Exception):
    """The stored secret was encrypted with a key that is no longer configured."""


def _fernet_key(material: str) -> bytes:
    derived = HKDF(
        algorithm=hashes.SHA256(), length=32, salt=None, info=b"stepcoin totp secrets v1"
    ).derive(material.encode())
    return base64.urlsafe_b64encode(derived)


@lru_cache(maxsize=8)
def _cipher(materials: tuple[str, ...]) -> MultiFernet:
    return MultiFernet([Fernet(_fernet_key(m)) for m in materials])


def cipher(settings: Settings) -> MultiFernet:
    materials = tuple(settings.totp_keys) or (settings.signing_secret(),)
    return _cipher(materials)


def seal(settings: Settings, secret: str) -> str:
    return STORED_PREFIX + cipher(settings).encrypt(secret.encode()).decode("ascii")


def unseal(settings: Settings, stored: str) -> str:
    if not stored.startswith(STORED_PREFIX):
        raise UnreadableSecret("not an encrypted secret")
    try:
        return cipher(settings).decrypt(stored[len(STORED_PREFIX) :].encode("ascii")).decode()
    except InvalidToken as exc:
        raise UnreadableSecret("no configured key opens this secret") from exc
