# Shared set-up for the quick-start scripts: a project venv with the package installed.
# Re-running is cheap: pip skips what is already installed.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
PY=${PYTHON:-python3}
if [[ ! -x .venv/bin/python ]]; then
  "$PY" -m venv .venv
fi
. .venv/bin/activate
extras=${1:-}
stamp=.venv/.installed${extras:+-$extras}
if [[ ! -f $stamp || pyproject.toml -nt $stamp ]]; then
  python -m pip install -q --upgrade pip >/dev/null 2>&1 || true
  python -m pip install -q -e ".${extras:+[$extras]}"
  touch "$stamp"
fi
