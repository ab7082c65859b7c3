#!/usr/bin/env bash
# Install StepCoin with its test tools into .venv and run the tests. They use the PostgreSQL
# server in STEPCOIN_TEST_DATABASE_URL when set, otherwise an embedded PostgreSQL 18.
# The console's browser tests drive Debian's chromium (installed here when missing and apt-get
# can run; without it those tests are skipped with the reason).
# Tests run in parallel, one pytest-xdist worker per CPU (-n auto), each on its own database;
# extra arguments go to pytest (e.g. -m "not slow", -k refresh, or -n 0 for one process).
source "$(dirname "${BASH_SOURCE[0]}")/_venv.sh"
# pip only when pyproject.toml changed since the last install (the install is editable, so
# source changes need none): a no-op pip run costs ~15 s, a quarter of the everyday run.
STAMP="$VENV/.stepcoin-test-install"
WANT="$(sha256sum "$ROOT/pyproject.toml" | cut -d' ' -f1) [test]"
if [ "$(cat "$STAMP" 2>/dev/null)" != "$WANT" ]; then
  ensure_venv "[test]"
  echo "$WANT" >"$STAMP"
fi
if ! command -v chromium >/dev/null 2>&1 && [ ! -x /usr/bin/chromium ]; then
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
    echo "installing Debian's chromium for the console's browser tests"
    (apt-get install -y -qq chromium >/dev/null 2>&1 ||
      (apt-get update -qq && apt-get install -y -qq chromium >/dev/null)) ||
      echo "could not install chromium: the browser tests will be skipped" >&2
  else
    echo "chromium is not installed: the console's browser tests will be skipped" >&2
  fi
fi
cd "$ROOT"
exec "$VENV/bin/python" -m pytest -n auto "$@"
