"""Shopify webhook signatures: base64 HMAC-SHA256 of the raw body (X-Shopify-Hmac-Sha256).

Several secrets may be accepted at once so that an app secret can be rotated without
rejecting deliveries signed with the old one during the rotation window.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
from collections.abc import Sequence

HMAC_HEADER = "X-Shopify-Hmac-Sha256"

_SHA256_DIGEST_SIZE = hashlib.sha256().digest_size


def _digest(body: bytes, secret: str) -> bytes:
    return hmac.new(secret.encode("utf-8"), body, hashlib.sha256).digest()


def sign(body: bytes, secret: str) -> str:
    """The X-Shopify-Hmac-Sha256 value Shopify sends for `body` signed with `secret`."""
    return base64.b64encode(_digest(body, secret)).decode("ascii")


def verify(body: bytes, header_value: str | None, secrets: Sequence[str]) -> bool:
    """True when the header is a valid signature of `body` under any accepted secret.

    Missing, garbled or wrongly sized headers are simply invalid (never an exception), and
    every accepted secret is compared in constant time.
    """
    if not header_value or not secrets:
        return False
    try:
        received = base64.b64decode(header_value.strip().encode("ascii"), validate=True)
    except (binascii.Error, UnicodeEncodeError, ValueError):
        return False
    if len(received) != _SHA256_DIGEST_SIZE:
        return False
    valid = False
    for secret in secrets:
        if not secret:
            continue
        # No early exit: the time taken does not reveal which secret matched.
        valid |= hmac.compare_digest(_digest(body, secret), received)
    return valid
