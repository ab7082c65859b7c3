"""PyJWT's HS256 with its key prepared once per key (auth.tokens._PreparedHS256, issue 13):
the same tokens signed and verified, the same keys refused, each key still checked."""

from __future__ import annotations

import secrets
import uuid

import jwt
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec
from jwt.algorithms import HMACAlgorithm

from stepcoin.auth import tokens
from stepcoin.auth.tokens import (
    InvalidToken,
    _prepared_hmac_key,
    _PreparedHS256,
    clear_token_cache,
    create_access_token,
    decode_access_token,
)
from stepcoin.config import Settings

_STOCK = HMACAlgorithm(HMACAlgorithm.SHA256)


def _pem_public_key() -> bytes:
    key = ec.generate_private_key(ec.SECP256R1()).public_key()
    return key.public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )


def _der_public_key() -> bytes:
    key = ec.generate_private_key(ec.SECP256R1()).public_key()
    return key.public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )


def test_hs256_is_the_prepared_algorithm_and_installing_again_changes_nothing():
    installed = jwt.get_algorithm_by_name("HS256")
    assert isinstance(installed, _PreparedHS256)
    tokens._install_prepared_hs256()
    assert jwt.get_algorithm_by_name("HS256") is installed
    # the other algorithms are PyJWT's own
    assert not isinstance(jwt.get_algorithm_by_name("HS512"), _PreparedHS256)


@pytest.mark.parametrize("key", ["a" * 64, b"\x00\xff" * 20, "é-secret-" * 5, "x"])
def test_a_key_prepares_as_pyjwt_prepares_it(key):
    assert _PreparedHS256(HMACAlgorithm.SHA256).prepare_key(key) == _STOCK.prepare_key(key)


@pytest.mark.parametrize(
    "key",
    [
        pytest.param(_pem_public_key(), id="pem"),
        pytest.param(_der_public_key(), id="der"),
        pytest.param(b"ssh-rsa AAAAB3NzaC1yc2EAAAADAQABAAABAQ", id="ssh"),
        pytest.param('{"kty": "oct", "k": "c2VjcmV0"}', id="jwk-json"),
        pytest.param(b"", id="empty"),
    ],
)
def test_a_key_pyjwt_refuses_is_refused_every_time(key):
    with pytest.raises(jwt.InvalidKeyError):
        _STOCK.prepare_key(key)
    prepared = _PreparedHS256(HMACAlgorithm.SHA256)
    for _ in range(3):  # a refusal is not cached into an acceptance
        with pytest.raises(jwt.InvalidKeyError):
            prepared.prepare_key(key)
    with pytest.raises(jwt.InvalidKeyError):
        jwt.encode({"sub": "x"}, key, algorithm="HS256")


def test_each_key_is_checked_once_then_served_from_the_cache():
    _prepared_hmac_key.cache_clear()
    key = secrets.token_urlsafe(48)
    for _ in range(5):
        token = jwt.encode({"sub": "walker"}, key, algorithm="HS256")
        assert jwt.decode(token, key, algorithms=["HS256"]) == {"sub": "walker"}
    info = _prepared_hmac_key.cache_info()
    assert info.misses == 1
    assert info.hits == 9


def test_access_tokens_verify_as_with_pyjwts_own_hs256():
    settings = Settings(env="test", jwt_secret=secrets.token_urlsafe(48))
    user = uuid.uuid4()
    token = create_access_token(settings, user, "user")
    header, payload, signature = token.split(".")
    # the stock algorithm computes the very same signature
    expected = _STOCK.sign(
        f"{header}.{payload}".encode(), _STOCK.prepare_key(settings.signing_secret())
    )
    assert jwt.utils.base64url_encode(expected).decode() == signature
    clear_token_cache()
    assert decode_access_token(settings, token).user_id == user
    # another key's signature is refused, as before
    other = Settings(env="test", jwt_secret=secrets.token_urlsafe(48))
    clear_token_cache()
    with pytest.raises(InvalidToken):
        decode_access_token(other, token)
    forged = f"{header}.{payload}.{signature[:-2]}AA"
    clear_token_cache()
    with pytest.raises(InvalidToken):
        decode_access_token(settings, forged)
