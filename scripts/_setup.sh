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
# up to date when an install at least as wide is newer than pyproject.toml, setup.py and the
# C extension's source (./scripts/test's
# extras include ./scripts/chat's: running one after the other installs nothing)
_ergopy_ready() {
  local s have e
  for s in .venv/.ergopy-*; do
    [ -f "$s" ] && [ ! pyproject.toml -nt "$s" ] && [ ! setup.py -nt "$s" ] || continue
    [ ! src/ergopy/meta/websocket/_mask.c -nt "$s" ] || continue  # the C extension is built at install
    have=",${s#.venv/.ergopy-},"
    local missing=
    IFS=, read -ra _want <<< "${EXTRAS:-uvloop}"
    for e in "${_want[@]}"; do [[ "$have" == *",$e,"* ]] || missing=1; done
    [ -z "$missing" ] && return 0
  done
  return 1
}
if ! _ergopy_ready; then
  .venv/bin/python -m pip install -q --upgrade pip >/dev/null
  .venv/bin/python -m pip install -q -e ".[${EXTRAS:-uvloop}]"
  touch "$stamp"
fi
