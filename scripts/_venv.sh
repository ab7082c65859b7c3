# Shared by start.sh and test.sh: make (or reuse) .venv with Python 3.11+ and install StepCoin.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
VENV="${STEPCOIN_VENV:-$ROOT/.venv}"
find_python() {
  for candidate in python3.11 python3.12 python3.13 python3; do
    if command -v "$candidate" >/dev/null 2>&1 &&
       "$candidate" -c 'import sys; sys.exit(0 if (3, 11) <= sys.version_info[:2] < (3, 14) else 1)'; then
      echo "$candidate"; return 0
    fi
  done
  echo "StepCoin needs Python 3.11, 3.12 or 3.13 on PATH" >&2; return 1
}
ensure_venv() {  # $1: pip extras, e.g. "" or "[test]"
  if [ ! -x "$VENV/bin/python" ]; then
    "$(find_python)" -m venv "$VENV"
  fi
  "$VENV/bin/python" -m pip install --quiet --upgrade pip
  "$VENV/bin/python" -m pip install --quiet -e "$ROOT$1"
}
