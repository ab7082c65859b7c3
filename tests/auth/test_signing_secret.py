"""No signing secret published in the source is ever accepted; without one configured, a
random secret is generated once per data directory (issue 12, hole 9)."""

from __future__ import annotations

import stat
import threading
import time
from pathlib import Path

import jwt
import pytest
from pydantic import ValidationError

from stepcoin.auth.dependencies import get_app_settings
from stepcoin.auth.tokens import create_access_token
from stepcoin.config import (
    JWT_SECRET_FILE,
    PUBLISHED_JWT_SECRETS,
    SecretFileError,
    Settings,
    load_or_create_secret,
)
from stepcoin.main import create_app
from tests.conftest import bearer, register

OLD_DEFAULT = "dev-only-insecure-secret-change-me-0000000000"  # the source's default until now


@pytest.fixture(autouse=True)
def no_configured_secret(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("STEPCOIN_JWT_SECRET", raising=False)
    monkeypatch.delenv("STEPCOIN_DATA_DIR", raising=False)


def development(data_dir: Path, **extra: object) -> Settings:
    return Settings(env="development", data_dir=str(data_dir), **extra)  # type: ignore[arg-type]


async def test_a_token_forged_with_the_old_published_secret_is_refused(app, client, tmp_path):
    account = await register(client)
    user_id = account["user"]["id"]
    installed = development(tmp_path, database_url="postgresql://unused/x")
    now = int(time.time())
    forged = jwt.encode(
        {
            "sub": user_id,
            "role": "admin",
            "typ": "access",
            "iss": installed.jwt_issuer,
            "aud": installed.jwt_audience,
            "iat": now,
            "exp": now + 300,
        },
        OLD_DEFAULT,
        "HS256",
    )
    app.dependency_overrides[get_app_settings] = lambda: installed
    try:
        refused = await client.get("/v1/me", headers=bearer(forged))
        genuine = create_access_token(installed, account["user"]["id"], "user")
        accepted = await client.get("/v1/me", headers=bearer(genuine))
    finally:
        app.dependency_overrides.pop(get_app_settings)
    assert refused.status_code == 401
    assert accepted.status_code == 200, accepted.text


def test_one_data_dir_one_secret_private_and_random(tmp_path):
    first = development(tmp_path).signing_secret()
    second = development(tmp_path).signing_secret()  # another process of the installation
    assert first == second and len(first) >= 48
    assert first not in PUBLISHED_JWT_SECRETS
    secret_file = tmp_path / JWT_SECRET_FILE
    assert stat.S_IMODE(secret_file.stat().st_mode) == 0o600
    assert secret_file.read_text().strip() == first
    assert development(tmp_path / "other").signing_secret() != first
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".")] == []  # no leftovers


def test_processes_starting_at_once_agree_on_one_secret(tmp_path):
    path = tmp_path / "data" / JWT_SECRET_FILE
    start = threading.Barrier(8)
    seen: list[str] = []

    def boot() -> None:
        start.wait()
        seen.append(load_or_create_secret(path))

    threads = [threading.Thread(target=boot) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(seen) == 8 and len(set(seen)) == 1
    assert path.read_text().strip() == seen[0]


@pytest.mark.parametrize("env", ["development", "test", "production"])
@pytest.mark.parametrize("secret", [*sorted(PUBLISHED_JWT_SECRETS), "short-secret", "x" * 31])
def test_a_published_or_short_configured_secret_is_refused_everywhere(env, secret):
    with pytest.raises(ValidationError, match="STEPCOIN_JWT_SECRET"):
        Settings(env=env, jwt_secret=secret, database_url="postgresql://unused/x")


def test_a_configured_secret_is_used_as_is_and_an_empty_one_is_unset(tmp_path, monkeypatch):
    configured = development(tmp_path, jwt_secret="k" * 40)
    assert configured.signing_secret() == "k" * 40
    assert not (tmp_path / JWT_SECRET_FILE).exists()
    monkeypatch.setenv("STEPCOIN_JWT_SECRET", "")
    generated = development(tmp_path).signing_secret()
    assert (tmp_path / JWT_SECRET_FILE).read_text().strip() == generated


def test_without_a_usable_data_directory_the_app_refuses_to_start(tmp_path):
    blocker = tmp_path / "a-file"
    blocker.write_text("not a folder")
    with pytest.raises(SecretFileError, match="STEPCOIN_DATA_DIR"):
        create_app(development(blocker / "data", database_url="postgresql://unused/x"))
    with pytest.raises(ValidationError, match="STEPCOIN_JWT_SECRET"):
        Settings(env="production", database_url="postgresql://unused/x")  # no secret, no dir


def test_a_secret_file_others_can_read_or_a_damaged_one_is_refused(tmp_path):
    path = tmp_path / JWT_SECRET_FILE
    path.write_text("s" * 64)
    path.chmod(0o644)
    with pytest.raises(SecretFileError, match="chmod 600"):
        development(tmp_path).signing_secret()
    path.write_text("short")
    path.chmod(0o600)
    with pytest.raises(SecretFileError, match="no usable secret"):
        load_or_create_secret(path)
