#!/usr/bin/env bash
# Install StepCoin into .venv and start it: API + job worker, on the embedded PostgreSQL unless
# DATABASE_URL is set. Extra arguments go to `stepcoin serve` (e.g. --port 8080).
source "$(dirname "${BASH_SOURCE[0]}")/_venv.sh"
ensure_venv ""
exec "$VENV/bin/stepcoin" serve "$@"
