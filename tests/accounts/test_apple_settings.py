"""Apple's token endpoints: production talks to Apple only; the client_secret is what Apple
documents."""

from __future__ import annotations

import jwt
import pytest
from pydantic import ValidationError

from stepcoin.auth.apple import AppleRefused, client_secret
from stepcoin.config import Settings

PRODUCTION = {"env": "production", "jwt_secret": "p" * 40, "database_url": "postgresql://x/y"}


def test_production_refuses_a_stand_in_for_apple():
    with pytest.raises(ValidationError, match="APPLE_AUTH_URL"):
        Settings(**PRODUCTION, apple_auth_url="http://127.0.0.1:9999")
    assert Settings(**PRODUCTION).apple_auth_url == "https://appleid.apple.com"


def test_the_client_secret_is_an_es256_jwt_for_apple(settings, apple_standin):
    secret = client_secret(settings, "app.stepcoin.test", now=1_800_000_000)
    header = jwt.get_unverified_header(secret)
    assert header == {"alg": "ES256", "kid": apple_standin.key_id, "typ": "JWT"}
    claims = jwt.decode(
        secret,
        apple_standin.public_key,
        algorithms=["ES256"],
        audience="https://appleid.apple.com",
        options={"verify_exp": False, "verify_iat": False},
    )
    assert claims["iss"] == apple_standin.team_id
    assert claims["sub"] == "app.stepcoin.test"
    assert claims["exp"] - claims["iat"] <= 300


def test_without_a_team_key_nothing_is_signed():
    with pytest.raises(AppleRefused):
        client_secret(Settings(env="test", database_url="postgresql://x/y"), "app")
