# Sourced by scripts/chat and scripts/test: makes .venv with ergopy and its extras.
# EXTRAS picks the extras (default: uvloop). Idempotent and quick when nothing changed.
PY=${PYTHON:-python3}
if ! "$PY" -c 'import sys; sys.exit(sys.version_info < (3, 11))' 2>/dev/null; then
  echo "ergopy needs Python 3.11 or newer (set PYTHON=python3.11)" >&2
  exit 1
fi
if [ ! -x .venv/bin/python ]; then
  "$PY" -m venv .venv
fi
stamp=".venv/.ergopy-${EXTRAS:-uvloop}"
if [ ! -f "$stamp" ] || [ pyproject.toml -nt "$stamp" ]; then
  .venv/bin/python -m pip install -q --upgrade pip >/dev/null
  .venv/bin/python -m pip install -q -e ".[${EXTRAS:-uvloop}]"
  touch "$stamp"
fi
