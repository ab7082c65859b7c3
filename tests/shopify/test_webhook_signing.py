"""Webhook HMACs: exactly the body, exactly the secret, old and new secrets during a rotation."""

from __future__ import annotations

import base64
import hashlib
import hmac

from stepcoin.shop.webhook_signing import sign, verify

BODY = b'{"id":1001,"admin_graphql_api_id":"gid://shopify/Order/1001","tags":"stepcoin-AB12"}'
SECRET = "shpss_current_secret"
OLD_SECRET = "shpss_previous_secret"


def test_sign_is_base64_hmac_sha256_of_the_raw_body() -> None:
    expected = base64.b64encode(hmac.new(SECRET.encode(), BODY, hashlib.sha256).digest()).decode()
    assert sign(BODY, SECRET) == expected


def test_valid_signature_is_accepted() -> None:
    assert verify(BODY, sign(BODY, SECRET), [SECRET])


def test_one_changed_byte_is_refused() -> None:
    header = sign(BODY, SECRET)
    tampered = BODY.replace(b"1001", b"1002", 1)
    assert tampered != BODY
    assert not verify(tampered, header, [SECRET])


def test_missing_or_garbled_header_is_refused() -> None:
    assert not verify(BODY, None, [SECRET])
    assert not verify(BODY, "", [SECRET])
    assert not verify(BODY, "not base64 at all!", [SECRET])
    assert not verify(BODY, base64.b64encode(b"short").decode(), [SECRET])
    assert not verify(BODY, "ünïcode", [SECRET])


def test_wrong_secret_is_refused() -> None:
    assert not verify(BODY, sign(BODY, "someone-else"), [SECRET])
    assert not verify(BODY, sign(BODY, SECRET), [])


def test_rotation_accepts_old_and_new_secret() -> None:
    accepted = [SECRET, OLD_SECRET]
    assert verify(BODY, sign(BODY, SECRET), accepted)
    assert verify(BODY, sign(BODY, OLD_SECRET), accepted)
    assert not verify(BODY, sign(BODY, "retired-long-ago"), accepted)
