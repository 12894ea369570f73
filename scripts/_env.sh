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
  echo "setting up .venv (pip install -e .${extras:+[$extras]}) ..." >&2
  log=.venv/pip-install.log
  if ! python -m pip install -e ".${extras:+[$extras]}" >"$log" 2>&1; then
    tail -n 30 "$log" >&2
    echo "pip install failed; full log in $log" >&2
    exit 2
  fi
  touch "$stamp"
fi
