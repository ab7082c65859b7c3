#!/usr/bin/env bash
# Install StepCoin into .venv and start it: API + job worker, on the embedded PostgreSQL unless
# DATABASE_URL is set. Extra arguments go to `stepcoin serve` (e.g. --port 8080).
# Development mode: with no shop configured, the Shopify stand-in (the `standin` extra) serves
# the demo catalogue. A production install is `pip install .` without it.
# Once it listens, `serve` prints where the API, /docs and /admin are, the database it uses
# (password hidden) and the command that makes the first admin; logs are readable lines on a
# terminal, JSON lines otherwise (STEPCOIN_LOG_FORMAT=json|text to choose).
source "$(dirname "${BASH_SOURCE[0]}")/_venv.sh"
ensure_venv "[standin]"
exec "$VENV/bin/stepcoin" serve "$@"
