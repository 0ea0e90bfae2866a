#!/usr/bin/env bash
# Create or refresh the course's virtual environment and register its Jupyter kernel.
# Idempotent: a second run checks a stamp and finishes in about a second; an interrupted run is redone.
# Used by `make lab`, `make test` and .ci/run. Settings: PYTHON (default python3), VENV (default .venv),
# EXTRAS (pyproject.toml's extras to add to the student set, comma-separated: instructor, lecturer, maintainer;
# default none). Extras installed earlier stay: `make lab` after `make test` installs nothing.
set -euo pipefail
cd "$(dirname "$0")/.."

PYTHON="${PYTHON:-python3}"
VENV="${VENV:-.venv}"
KERNEL_NAME="rectified"
KERNEL_DISPLAY="Rectified (Python 3)"
STAMP="$VENV/.rectified-install-stamp"
EXTRAS="${EXTRAS:-}"

fail() { echo "error: $*" >&2; exit 1; }

command -v "$PYTHON" >/dev/null 2>&1 ||
  fail "'$PYTHON' was not found: Rectified needs Python 3.11-3.13 (install python3, or run: make PYTHON=/path/to/python3.11 ...)"
"$PYTHON" -c 'import sys; sys.exit(not ((3, 11) <= sys.version_info[:2] <= (3, 13)))' 2>/dev/null ||
  fail "Rectified needs Python 3.11-3.13, but '$PYTHON' is $("$PYTHON" -c 'import platform; print(platform.python_version())' 2>/dev/null || echo 'not runnable'); run: make PYTHON=/path/to/python3.11 ..."
"$PYTHON" -c 'import venv, ensurepip' 2>/dev/null ||
  fail "'$PYTHON' lacks the venv module: install it (on Debian/Ubuntu: apt-get install python3-venv)"

# A venv left half-made by an interrupted run is rebuilt, not trusted.
if [ -d "$VENV" ] && ! "$VENV/bin/python" -c 'import sys' >/dev/null 2>&1; then
  echo "Rebuilding the incomplete environment in $VENV"
  rm -rf "$VENV"
fi
[ -d "$VENV" ] || { echo "Creating $VENV"; "$PYTHON" -m venv "$VENV"; }

# The stamp names what was installed ("<hash> <python> extras=a,b"); it is written only after every step succeeded.
wanted="$(cat pyproject.toml tools/bootstrap.sh | sha256sum | cut -c1-16) $("$VENV/bin/python" -c 'import sys; print(sys.version.split()[0])')"
# A set of extras as one sorted, comma-separated list; maintainer includes instructor and lecturer.
normalize() {
  local list
  list="$(printf '%s\n' "$@" | tr ', ' '\n\n' | sed '/^$/d' | sort -u)"
  if printf '%s\n' "$list" | grep -qx maintainer; then
    list="$(printf '%s\n' "$list" | sed '/^instructor$/d; /^lecturer$/d')"
  fi
  printf '%s\n' "$list" | sed '/^$/d' | paste -sd, -
}
had=""
if [ -f "$STAMP" ]; then
  read -r stamp_hash stamp_python stamp_extras < "$STAMP" || true
  had="$(normalize "${stamp_extras#extras=}")"
fi
# What to install: the extras asked for plus those installed before.
extras="$(normalize "$EXTRAS" "$had")"
if [ "${stamp_hash:-} ${stamp_python:-}" = "$wanted" ] && [ "$extras" = "$had" ]; then
  exit 0
fi

echo "Installing the course${extras:+ with [$extras]} into $VENV (first time: about a minute; torch is the CPU build)"
"$VENV/bin/python" -m pip install --disable-pip-version-check -q -e ".${extras:+[$extras]}"
# One thread per kernel: tiny torch models train several times faster (bench/bench_kernel_threads.py measures it).
"$VENV/bin/python" -m ipykernel install --sys-prefix --name "$KERNEL_NAME" --display-name "$KERNEL_DISPLAY" \
  --env OMP_NUM_THREADS 1 --env MKL_NUM_THREADS 1 >/dev/null
# nbgrader's server extensions (formgrader, assignment list, validate) are enabled by its install;
# say so explicitly so a changed default cannot silently switch them off.
for ext in formgrader assignment_list course_list validate_assignment; do
  "$VENV/bin/jupyter" server extension enable --sys-prefix "nbgrader.server_extensions.$ext" >/dev/null 2>&1
done
echo "$wanted extras=$extras" > "$STAMP"
echo "Installed. Kernel: $KERNEL_DISPLAY"
