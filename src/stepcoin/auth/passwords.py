"""Password hashing (argon2id, OWASP parameters) and the password policy."""

from __future__ import annotations

from functools import lru_cache
from importlib import resources

from argon2 import PasswordHasher, Type
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError
from pydantic.config import JsonDict

MIN_PASSWORD_LENGTH = 8
MAX_PASSWORD_LENGTH = 128
# What the OpenAPI document declares of a new password: the policy's lengths. The model itself
# accepts 1 to 1024 characters so that a short or long one is refused as `weak_password`.
NEW_PASSWORD_SCHEMA: JsonDict = {"minLength": MIN_PASSWORD_LENGTH, "maxLength": MAX_PASSWORD_LENGTH}

# OWASP Password Storage Cheat Sheet: argon2id, m=19 MiB, t=2, p=1.
_hasher = PasswordHasher(time_cost=2, memory_cost=19 * 1024, parallelism=1, type=Type.ID)
# Settings.password_hashing picks one; "test" (argon2's minimum cost) exists so the test suite
# does not spend seconds per hundred sign-ups, and the settings refuse it outside env=test.
_HASHERS = {
    "owasp": _hasher,
    "test": PasswordHasher(time_cost=1, memory_cost=8, parallelism=1, type=Type.ID),
}


@lru_cache(maxsize=1)
def common_passwords() -> frozenset[str]:
    text = resources.files("stepcoin.data").joinpath("common_passwords.txt").read_text("utf-8")
    return frozenset(
        line.strip().lower() for line in text.splitlines() if line.strip() and line[0] != "#"
    )


def password_problem(password: str) -> str | None:
    """Why this password is refused, or None; every character counts (no truncation)."""
    if len(password) < MIN_PASSWORD_LENGTH:
        return f"must be at least {MIN_PASSWORD_LENGTH} characters"
    if len(password) > MAX_PASSWORD_LENGTH:
        return f"must be at most {MAX_PASSWORD_LENGTH} characters"
    if password.lower() in common_passwords():
        return "is one of the most common passwords; choose another"
    return None


def hash_password(password: str, profile: str = "owasp") -> str:
    return _HASHERS[profile].hash(password)


def verify_password(password_hash: str, password: str) -> bool:
    """Checks with the parameters stored in the hash itself, whichever profile made it."""
    try:
        return _hasher.verify(password_hash, password)
    except (VerifyMismatchError, VerificationError, InvalidHashError):
        return False


# Verified against when the email is unknown, so both failures cost the same time.
DUMMY_HASH = _hasher.hash("dummy password for timing equalisation")
