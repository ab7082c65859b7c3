"""Typed process configuration: environment variables with the prefix STEPCOIN_ plus DATABASE_URL.

Values that an admin tunes while the service runs (coin rate, anti-cheat thresholds, login
throttling) are runtime settings in the database instead: see stepcoin.runtime_settings.
"""

from __future__ import annotations

import os
import secrets
import stat
import time
from functools import lru_cache
from pathlib import Path
from typing import Annotated, Literal

from pydantic import AliasChoices, Field, PrivateAttr, SecretStr, field_validator, model_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

# Signing secrets that were ever published in StepCoin's source (defaults of earlier versions,
# the test suite's old constant): anyone can forge tokens with them, so no environment accepts
# them. Without STEPCOIN_JWT_SECRET a random secret is generated in the data directory.
PUBLISHED_JWT_SECRETS = frozenset(
    {
        "dev-only-insecure-secret-change-me-0000000000",
        "test-secret-that-is-long-enough-for-hs256-0123456789",
    }
)
MIN_SECRET_BYTES = 32
JWT_SECRET_FILE = "jwt-secret"

# The Shopify stand-in's public identity (development, demo and tests; package shopify_standin,
# which uses the same defaults). Anyone can read these, so production refuses them.
STANDIN_SHOP_DOMAIN = "stepcoin-standin.myshopify.com"
STANDIN_ACCESS_TOKEN = "shpat_stepcoin_standin"
STANDIN_WEBHOOK_SECRET = "standin-webhook-secret"
# The push services' production endpoints (stepcoin.notify.fcm and .apns say the same).
FCM_API_URL = "https://fcm.googleapis.com"
APNS_URL = "https://api.push.apple.com"
APNS_SANDBOX_URL = "https://api.sandbox.push.apple.com"

APPLE_AUTH_URL = "https://appleid.apple.com"

CommaList = Annotated[list[str], NoDecode]


class Settings(BaseSettings):
    """One settings object for the whole process, validated at start-up."""

    model_config = SettingsConfigDict(
        env_prefix="STEPCOIN_", env_file=".env", env_file_encoding="utf-8", extra="ignore"
    )

    env: Literal["development", "test", "production"] = "development"
    database_url: str | None = Field(
        default=None,
        validation_alias=AliasChoices("DATABASE_URL", "STEPCOIN_DATABASE_URL"),
        description="PostgreSQL 15+ URL; unset means: start the embedded PostgreSQL.",
    )
    data_dir: str | None = Field(
        default=None, description="Folder of the embedded PostgreSQL (and later, backups)."
    )
    host: str = "127.0.0.1"
    port: int = Field(default=8000, ge=1, le=65535)
    db_pool_size: int = Field(default=10, ge=1, le=200)
    db_pool_overflow: int = Field(default=5, ge=0, le=200)
    log_level: str = "INFO"
    log_format: Literal["auto", "json", "text"] = Field(
        default="auto",
        description="auto: readable text on a terminal, one JSON object per line otherwise.",
    )
    access_log: bool = True
    opentelemetry: bool = Field(
        default=False,
        description="FastAPI's native OpenTelemetry traces, metrics and logs (through the "
        "process's OpenTelemetry providers: an SDK and exporter the operator configures). Off, "
        "FastAPI does not look for providers on every request.",
    )
    max_body_bytes: int = Field(default=4 * 1024 * 1024, ge=1024)
    forwarded_allow_ips: str = Field(
        default="127.0.0.1", description="Proxies whose X-Forwarded-For is trusted (uvicorn)."
    )
    metrics_token: SecretStr | None = Field(
        default=None,
        description="Bearer token /metrics asks for; unset: /metrics answers loopback only.",
    )

    jwt_secret: SecretStr | None = Field(
        default=None,
        description="HS256 signing key of access tokens (at least 32 bytes); unset: a random "
        "one generated on first start in the data directory's `jwt-secret` file (mode 0600) "
        "and shared by every process using that directory.",
    )
    jwt_issuer: str = "stepcoin"
    jwt_audience: str = "stepcoin-app"
    access_token_ttl_seconds: int = Field(default=900, ge=30, le=900)
    refresh_token_idle_ttl_seconds: int = Field(default=30 * 86400, ge=60)
    refresh_token_absolute_ttl_seconds: int = Field(default=90 * 86400, ge=60)
    password_hashing: Literal["owasp", "test"] = Field(
        default="owasp",
        description="argon2id parameters for new passwords: owasp (m=19 MiB, t=2, p=1); "
        "test is argon2's minimum, for the test suite only (refused unless STEPCOIN_ENV=test).",
    )

    totp_keys: CommaList = Field(
        default_factory=list,
        description="Keys that encrypt the console's TOTP secrets, newest first; default: "
        "derived from the signing secret (STEPCOIN_JWT_SECRET or the generated one).",
    )

    google_client_ids: CommaList = Field(default_factory=list)
    google_jwks_url: str = "https://www.googleapis.com/oauth2/v3/certs"
    google_issuers: CommaList = Field(
        default_factory=lambda: ["https://accounts.google.com", "accounts.google.com"]
    )
    apple_client_ids: CommaList = Field(default_factory=list)
    apple_jwks_url: str = "https://appleid.apple.com/auth/keys"
    apple_issuer: str = "https://appleid.apple.com"
    # Apple's token revocation on account deletion (Sign in with Apple REST API): the team's
    # key signs the client_secret JWT (ES256). Unset: deletions cannot revoke, and say so.
    apple_team_id: str | None = None
    apple_key_id: str | None = None
    apple_private_key: SecretStr | None = Field(
        default=None, description="The team's Sign in with Apple key (.p8 PEM text)."
    )
    apple_auth_url: str = Field(
        default=APPLE_AUTH_URL,
        description="Base of /auth/token and /auth/revoke; another value (a local stand-in "
        "in tests) is refused in production.",
    )

    shopify_shop_domain: str | None = Field(
        default=None,
        description="e.g. my-shop.myshopify.com; unset: the local stand-in (development, demo "
        "and tests) or no shop (production).",
    )
    shopify_access_token: SecretStr | None = None
    shopify_api_version: str = "2025-01"
    shopify_webhook_secrets: CommaList = Field(
        default_factory=list,
        description="App secrets accepted for webhook HMACs, newest first (rotation window).",
    )
    shopify_timeout_seconds: float = Field(default=10.0, gt=0, le=60)

    job_heartbeat_seconds: float = Field(
        default=10, gt=0, le=300, description="How often a worker proves it is alive."
    )
    job_concurrency: int = Field(
        default=4,
        ge=1,
        le=32,
        description="Jobs one worker runs at once: a long job (a Shopify sweep of thousands of "
        "orders, a backup) does not hold the boards' refresh and the achievements batch behind it.",
    )
    job_stalled_seconds: float = Field(
        default=60, gt=0, le=3600, description="A job whose worker is silent this long is retried."
    )
    shopify_api_url: str | None = Field(
        default=None,
        description="Override of the GraphQL endpoint (a local stand-in on 127.0.0.1 only).",
    )

    # push notifications (stepcoin.notify): FCM HTTP v1 for Android, APNs for iOS; a platform
    # left unconfigured gets no pushes (its notifications stay in the inbox)
    push_fcm_credentials_file: str | None = Field(
        default=None,
        description="Path of the Firebase service-account key (JSON) used for FCM's OAuth2 "
        "token; unset: no Android pushes.",
    )
    push_fcm_project_id: str | None = Field(
        default=None, description="Firebase project id; default: the key's project_id."
    )
    push_fcm_api_url: str = Field(
        default=FCM_API_URL,
        description="FCM's endpoint; another (a local stand-in) only outside production.",
    )
    push_apns_key_file: str | None = Field(
        default=None,
        description="Path of the APNs auth key (.p8, ES256); unset: no iOS pushes.",
    )
    push_apns_key_id: str | None = None
    push_apns_team_id: str | None = None
    push_apns_topic: str | None = Field(default=None, description="The iOS app's bundle id.")
    push_apns_url: str = Field(
        default=APNS_URL, description="APNs production host; another only outside production."
    )
    push_apns_sandbox_url: str = Field(
        default=APNS_SANDBOX_URL,
        description="APNs development host; another only outside production.",
    )
    push_apns_ca_file: str | None = Field(
        default=None,
        description="A certificate authority to trust for APNs (a local stand-in's); refused "
        "in production.",
    )
    push_timeout_seconds: float = Field(default=10.0, gt=0, le=60)

    # mail (stepcoin.mail): the verification and password-reset mails
    smtp_url: SecretStr | None = Field(
        default=None,
        description="smtp://user:pass@host:587?starttls=true, smtps://user:pass@host:465 "
        "(implicit TLS) or smtp://host:25 (no TLS); unset outside production: mails go to the "
        "log and to <data dir>/mail/*.eml.",
    )
    mail_from: str = Field(
        default="StepCoin <no-reply@stepcoin.localhost>",
        description="The From of every mail, e.g. StepCoin <no-reply@example.com>.",
    )
    public_url: str | None = Field(
        default=None,
        description="Where mail links point, e.g. https://app.example.com; default "
        "http://<host>:<port>.",
    )

    run_worker_in_serve: bool = Field(
        default=True, description="`stepcoin serve` also runs the job worker (one-machine setup)."
    )
    cancel_wait_seconds: float = Field(
        default=3.0,
        ge=0,
        le=10,
        description="How long `POST /v1/orders/{id}/cancel` waits for Shopify's answer to a "
        "cancel request (the job usually settles it in milliseconds): confirmed in time, the "
        "answer is 200 `cancelled` with the coins back; else 202 `cancel_requested`.",
    )

    # operations
    database_pgbouncer: bool = Field(
        default=False,
        description="DATABASE_URL points at PgBouncer in transaction pooling mode: no "
        "server-side prepared statements, and the job worker polls instead of LISTEN/NOTIFY "
        "unless STEPCOIN_DATABASE_DIRECT_URL is set.",
    )
    database_direct_url: str | None = Field(
        default=None,
        description="A direct (unpooled) URL of the same database, for the job worker's "
        "LISTEN/NOTIFY and for backups (replication); default: DATABASE_URL.",
    )
    database_replica_urls: CommaList = Field(
        default_factory=list,
        description="PostgreSQL streaming standbys of DATABASE_URL, comma-separated: the hot "
        "reads (profile, wallet, ledger pages, achievements, leaderboards, catalogue) go to a "
        "healthy one; empty: every read on the primary (docs/replicas.md).",
    )
    replica_max_lag_ms: int = Field(
        default=1000,
        ge=0,
        le=3_600_000,
        description="A standby whose replay lags the primary by more than this is skipped "
        "until it catches up.",
    )
    replica_check_ms: int = Field(
        default=200,
        ge=10,
        le=60_000,
        description="How often each API process checks every standby (state, replay lag).",
    )
    job_poll_seconds: float = Field(
        default=1.0, gt=0, le=60, description="Queue polling interval when LISTEN/NOTIFY is off."
    )
    backup_repository: str | None = Field(
        default=None,
        description="Backup repository: a local folder or s3://bucket/prefix; default: "
        "<data dir>/backups for the embedded PostgreSQL.",
    )
    backup_cold_repository: str | None = Field(
        default=None, description="Repository of the weekly cold copies (unset: no copy)."
    )
    backup_region_repository: str | None = Field(
        default=None, description="Repository of the monthly copies in another region."
    )
    backup_pg_bin_dir: str | None = Field(
        default=None,
        description="Folder of pg_basebackup & co. matching the server's major version; "
        "default: the embedded binaries for PostgreSQL 18, else /usr/lib/postgresql/<major>/bin.",
    )
    backup_scratch_dir: str | None = Field(
        default=None, description="Where restore drills make their scratch instance (/tmp)."
    )
    backup_wal_wait_seconds: float = Field(
        default=60, gt=0, le=3600, description="How long a backup waits for WAL to be archived."
    )

    @field_validator(
        "google_client_ids",
        "apple_client_ids",
        "google_issuers",
        "shopify_webhook_secrets",
        "totp_keys",
        "database_replica_urls",
        mode="before",
    )
    @classmethod
    def _split_commas(cls, value: object) -> object:
        if isinstance(value, str):
            return [part.strip() for part in value.split(",") if part.strip()]
        return value

    @field_validator("jwt_secret", mode="before")
    @classmethod
    def _empty_secret_is_unset(cls, value: object) -> object:
        """STEPCOIN_JWT_SECRET= (empty, as a template .env leaves it) means: not configured."""
        return None if isinstance(value, str) and not value.strip() else value

    @property
    def shopify_shop_configured(self) -> bool:
        """A real shop: its domain and access token are both set."""
        return bool(self.shopify_shop_domain and self.shopify_access_token)

    @property
    def apple_revocation_configured(self) -> bool:
        """Apple tokens can be revoked: the team id, key id and key are all set."""
        return bool(self.apple_team_id and self.apple_key_id and self.apple_private_key)

    @property
    def uses_shopify_standin(self) -> bool:
        """No shop configured outside production: the local stand-in with a demo catalogue
        serves the shop. Production never uses it (no shop configured there means no shop)."""
        return self.env != "production" and not self.shopify_shop_configured

    @property
    def uses_push_standin(self) -> bool:
        """Development with no push service configured: the local push stand-ins (started in
        the process by notify.standin) take the pushes. Never in tests or production."""
        return (
            self.env == "development"
            and not self.push_fcm_credentials_file
            and not self.push_apns_key_file
        )

    _generated_jwt_secret: str | None = PrivateAttr(default=None)

    def signing_secret(self) -> str:
        """The access tokens' signing key: STEPCOIN_JWT_SECRET, else the data directory's
        generated `jwt-secret` file (made on first use). Raises SecretFileError (a clear
        message) when there is no usable data directory."""
        if self.jwt_secret is not None:
            return self.jwt_secret.get_secret_value()
        if self._generated_jwt_secret is None:
            self._generated_jwt_secret = load_or_create_secret(self.secret_dir() / JWT_SECRET_FILE)
        return self._generated_jwt_secret

    def secret_dir(self) -> Path:
        """Where generated secrets live: the data directory (STEPCOIN_DATA_DIR, else the
        embedded PostgreSQL's default folder; production only an explicit one)."""
        if self.data_dir:
            return Path(self.data_dir).expanduser()
        if self.env == "production":
            raise SecretFileError(_PRODUCTION_SECRET_HINT)
        # lazy: start-up time (embedded loads psutil; needed only without a configured secret)
        from stepcoin.embedded import default_data_dir

        return default_data_dir()

    @property
    def public_base_url(self) -> str:
        """The base of mail links, without a trailing slash."""
        return (self.public_url or f"http://{self.host}:{self.port}").rstrip("/")

    @model_validator(mode="after")
    def _refuse_unsafe_production(self) -> Settings:
        if self.jwt_secret is not None:
            problem = secret_problem(self.jwt_secret.get_secret_value())
            if problem:
                raise ValueError(f"STEPCOIN_JWT_SECRET {problem}")
        elif self.env == "production" and not self.data_dir:
            raise ValueError(_PRODUCTION_SECRET_HINT)
        if (
            self.env == "production"
            and self.shopify_shop_domain
            and not self.shopify_webhook_secrets
        ):
            raise ValueError("STEPCOIN_SHOPIFY_WEBHOOK_SECRETS is required with a real shop")
        if self.env == "production":
            self._refuse_standin_in_production()
        if self.env == "production" and (
            self.push_fcm_api_url != FCM_API_URL
            or self.push_apns_url != APNS_URL
            or self.push_apns_sandbox_url != APNS_SANDBOX_URL
            or self.push_apns_ca_file
        ):
            raise ValueError(
                "the push endpoints (STEPCOIN_PUSH_FCM_API_URL, STEPCOIN_PUSH_APNS_URL, "
                "STEPCOIN_PUSH_APNS_SANDBOX_URL, STEPCOIN_PUSH_APNS_CA_FILE) are Google's and "
                "Apple's own in production"
            )
        if self.env == "production" and self.apple_auth_url != APPLE_AUTH_URL:
            raise ValueError("STEPCOIN_APPLE_AUTH_URL must be Apple's own in production")
        if self.public_url and not self.public_url.startswith(("https://", "http://")):
            raise ValueError("STEPCOIN_PUBLIC_URL must start with https:// (or http://)")
        if self.password_hashing != "owasp" and self.env != "test":
            raise ValueError("STEPCOIN_PASSWORD_HASHING=test is for the test suite only")
        if any(len(key) < 32 for key in self.totp_keys):
            raise ValueError("every STEPCOIN_TOTP_KEYS key needs at least 32 characters")
        if self.refresh_token_idle_ttl_seconds > self.refresh_token_absolute_ttl_seconds:
            raise ValueError("refresh token idle TTL cannot exceed the absolute TTL")
        return self

    def _refuse_standin_in_production(self) -> None:
        """Production talks to a real shop or to none; anything that points at the stand-in
        (its address, its public token or secret, half a shop) stops the start."""
        choice = (
            "; production needs a real shop (STEPCOIN_SHOPIFY_SHOP_DOMAIN, "
            "STEPCOIN_SHOPIFY_ACCESS_TOKEN and STEPCOIN_SHOPIFY_WEBHOOK_SECRETS) or no shop "
            "(none of them)"
        )
        if self.shopify_api_url:
            raise ValueError("STEPCOIN_SHOPIFY_API_URL points at a local Shopify stand-in" + choice)
        if bool(self.shopify_shop_domain) != bool(self.shopify_access_token):
            raise ValueError(
                "STEPCOIN_SHOPIFY_SHOP_DOMAIN and STEPCOIN_SHOPIFY_ACCESS_TOKEN go together"
                + choice
            )
        token = self.shopify_access_token.get_secret_value() if self.shopify_access_token else ""
        if (
            self.shopify_shop_domain == STANDIN_SHOP_DOMAIN
            or token == STANDIN_ACCESS_TOKEN
            or STANDIN_WEBHOOK_SECRET in self.shopify_webhook_secrets
        ):
            raise ValueError("the Shopify settings are the stand-in's public values" + choice)


_PRODUCTION_SECRET_HINT = (
    "production needs STEPCOIN_JWT_SECRET (the same random value, at least 32 bytes, on every "
    "machine: python -c 'import secrets; print(secrets.token_urlsafe(48))') or STEPCOIN_DATA_DIR "
    "(a folder every process of this installation shares; the secret is generated there)"
)


class SecretFileError(RuntimeError):
    """No usable data directory for a generated secret: the process must not start."""


def secret_problem(value: str) -> str | None:
    """Why a configured secret is refused, or None."""
    if value in PUBLISHED_JWT_SECRETS:
        return (
            "is a value published in StepCoin's source: anyone could sign tokens with it; "
            "set a random value or unset it to have one generated in the data directory"
        )
    if len(value.encode()) < MIN_SECRET_BYTES:
        return f"must be at least {MIN_SECRET_BYTES} bytes of random text"
    return None


def load_or_create_secret(path: Path) -> str:
    """The secret kept in `path`, made on first use: secrets.token_urlsafe(48), mode 0600.

    Two processes starting at once agree: the secret is written whole to a private temporary
    file (O_CREAT|O_EXCL, 0600) and then linked into place, which fails for all but the first;
    whoever loses reads the winner's file. A file others can read or that is too short is
    refused rather than used.
    """
    folder = path.parent
    try:
        folder.mkdir(parents=True, exist_ok=True, mode=0o700)
    except OSError as exc:
        raise SecretFileError(
            f"no data directory for the signing secret: cannot create {folder} ({exc}); set "
            "STEPCOIN_DATA_DIR to a writable folder or STEPCOIN_JWT_SECRET"
        ) from exc
    for _ in range(3):
        existing = _read_secret(path)
        if existing is not None:
            return existing
        secret = secrets.token_urlsafe(48)
        if _publish_secret(path, secret):
            return secret
    raise SecretFileError(f"could not create or read {path}")


def _publish_secret(path: Path, secret: str) -> bool:
    """Write `secret` to `path` unless someone else did first; False when they did."""
    temporary = path.with_name(f".{path.name}.{os.getpid()}.{secrets.token_hex(4)}")
    try:
        fd = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o600)
    except OSError as exc:
        raise SecretFileError(
            f"no data directory for the signing secret: cannot write in {path.parent} ({exc}); "
            "set STEPCOIN_DATA_DIR to a writable folder or STEPCOIN_JWT_SECRET"
        ) from exc
    try:
        with os.fdopen(fd, "w", encoding="ascii") as out:
            out.write(secret + "\n")
            out.flush()
            os.fsync(out.fileno())
        try:
            os.link(temporary, path)  # atomic: fails with EEXIST if another process won
        except FileExistsError:
            return False
        except OSError:  # a file system without hard links: exclusive create in place
            try:
                fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o600)
            except FileExistsError:
                return False
            with os.fdopen(fd, "w", encoding="ascii") as out:
                out.write(secret + "\n")
                out.flush()
                os.fsync(out.fileno())
        return True
    finally:
        temporary.unlink(missing_ok=True)


def _read_secret(path: Path) -> str | None:
    """The secret in `path`; None when there is no file. Waits briefly for an empty file
    being written in place (only on file systems without hard links)."""
    for _ in range(20):
        try:
            fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW)
        except FileNotFoundError:
            return None
        except OSError as exc:
            raise SecretFileError(f"cannot read the signing secret {path}: {exc}") from exc
        with os.fdopen(fd, encoding="ascii", errors="replace") as file:
            mode = stat.S_IMODE(os.fstat(file.fileno()).st_mode)
            value = file.read().strip()
        if mode & 0o077:
            raise SecretFileError(
                f"{path} can be read by others (mode {mode:o}); make it private: chmod 600 {path}"
            )
        if len(value.encode()) >= MIN_SECRET_BYTES:
            return value
        if value:
            break  # damaged, not being written
        time.sleep(0.05)  # empty: being written in place (file systems without hard links)
    raise SecretFileError(
        f"{path} holds no usable secret (empty or shorter than {MIN_SECRET_BYTES} bytes); "
        "delete it to have a new one generated (every signed-in user signs in again)"
    )


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    """The process-wide settings, read once."""
    return Settings()
