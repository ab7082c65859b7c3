#!/usr/bin/env bash
# Install StepCoin with its test tools into .venv and run the tests. They use the PostgreSQL
# server in STEPCOIN_TEST_DATABASE_URL when set, otherwise an embedded PostgreSQL 18.
# Extra arguments go to pytest (e.g. -k refresh).
source "$(dirname "${BASH_SOURCE[0]}")/_venv.sh"
ensure_venv "[test]"
cd "$ROOT"
exec "$VENV/bin/python" -m pytest "$@"
