"""Typed process configuration: environment variables with the prefix STEPCOIN_ plus DATABASE_URL.

Values that an admin tunes while the service runs (coin rate, anti-cheat thresholds, login
throttling) are runtime settings in the database instead: see stepcoin.runtime_settings.
"""

from __future__ import annotations

from functools import lru_cache
from typing import Annotated, Literal

from pydantic import AliasChoices, Field, SecretStr, field_validator, model_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

DEV_JWT_SECRET = "dev-only-insecure-secret-change-me-0000000000"

# The Shopify stand-in's public identity (development, demo and tests; package shopify_standin,
# which uses the same defaults). Anyone can read these, so production refuses them.
STANDIN_SHOP_DOMAIN = "stepcoin-standin.myshopify.com"
STANDIN_ACCESS_TOKEN = "shpat_stepcoin_standin"
STANDIN_WEBHOOK_SECRET = "standin-webhook-secret"

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
    access_log: bool = True
    max_body_bytes: int = Field(default=4 * 1024 * 1024, ge=1024)
    forwarded_allow_ips: str = Field(
        default="127.0.0.1", description="Proxies whose X-Forwarded-For is trusted (uvicorn)."
    )
    metrics_token: SecretStr | None = Field(
        default=None,
        description="Bearer token /metrics asks for; unset: /metrics answers loopback only.",
    )

    jwt_secret: SecretStr = SecretStr(DEV_JWT_SECRET)
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
        "derived from STEPCOIN_JWT_SECRET.",
    )

    google_client_ids: CommaList = Field(default_factory=list)
    google_jwks_url: str = "https://www.googleapis.com/oauth2/v3/certs"
    google_issuers: CommaList = Field(
        default_factory=lambda: ["https://accounts.google.com", "accounts.google.com"]
    )
    apple_client_ids: CommaList = Field(default_factory=list)
    apple_jwks_url: str = "https://appleid.apple.com/auth/keys"
    apple_issuer: str = "https://appleid.apple.com"

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
    job_stalled_seconds: float = Field(
        default=60, gt=0, le=3600, description="A job whose worker is silent this long is retried."
    )
    shopify_api_url: str | None = Field(
        default=None,
        description="Override of the GraphQL endpoint (a local stand-in on 127.0.0.1 only).",
    )

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
        mode="before",
    )
    @classmethod
    def _split_commas(cls, value: object) -> object:
        if isinstance(value, str):
            return [part.strip() for part in value.split(",") if part.strip()]
        return value

    @property
    def shopify_shop_configured(self) -> bool:
        """A real shop: its domain and access token are both set."""
        return bool(self.shopify_shop_domain and self.shopify_access_token)

    @property
    def uses_shopify_standin(self) -> bool:
        """No shop configured outside production: the local stand-in with a demo catalogue
        serves the shop. Production never uses it (no shop configured there means no shop)."""
        return self.env != "production" and not self.shopify_shop_configured

    @property
    def public_base_url(self) -> str:
        """The base of mail links, without a trailing slash."""
        return (self.public_url or f"http://{self.host}:{self.port}").rstrip("/")

    @model_validator(mode="after")
    def _refuse_unsafe_production(self) -> Settings:
        secret = self.jwt_secret.get_secret_value()
        if self.env == "production" and (secret == DEV_JWT_SECRET or len(secret) < 32):
            raise ValueError(
                "STEPCOIN_JWT_SECRET must be set to a random value of at least 32 characters "
                "in production (the development default is refused)"
            )
        if (
            self.env == "production"
            and self.shopify_shop_domain
            and not self.shopify_webhook_secrets
        ):
            raise ValueError("STEPCOIN_SHOPIFY_WEBHOOK_SECRETS is required with a real shop")
        if self.env == "production":
            self._refuse_standin_in_production()
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


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    """The process-wide settings, read once."""
    return Settings()
