#!/usr/bin/env bash
# The system packages the tests need, installed when this machine allows it. Used by `make test` and .ci/run.
#
#   bubblewrap (bwrap), util-linux (setpriv, prlimit), procps (pgrep): the grading sandbox  (tests marked sandbox)
#   chromium: Debian's browser, driven by Playwright; none is downloaded            (tests marked chromium)
#   postgresql: initdb and postgres for a temporary gradebook server               (tests marked postgresql)
#   make: what runs all this (.ci/run calls this script before `make test`)
#
# Nothing missing: prints nothing. Missing, as root with apt-get: installs them. Missing otherwise (not root, or
# not Debian/Ubuntu): prints one line saying what to install and exits 0, so the tests that need none of them
# still run; pytest then skips the others and says which and why at the end (tests/conftest.py).
# Under CI=true (any CI other than empty, false or 0) a package that cannot be installed is an error (exit 1): CI skips nothing.
# PG_LIBDIR: where Debian keeps PostgreSQL's server programs, off PATH (default /usr/lib/postgresql).
set -uo pipefail

PG_LIBDIR="${PG_LIBDIR:-/usr/lib/postgresql}"

missing_packages() {
  local packages=""
  command -v make >/dev/null 2>&1 || packages="$packages make"
  command -v bwrap >/dev/null 2>&1 || packages="$packages bubblewrap"
  { command -v setpriv && command -v prlimit; } >/dev/null 2>&1 || packages="$packages util-linux"
  command -v pgrep >/dev/null 2>&1 || packages="$packages procps"
  command -v chromium >/dev/null 2>&1 || packages="$packages chromium"
  compgen -G "$PG_LIBDIR/*/bin/initdb" >/dev/null || command -v initdb >/dev/null 2>&1 || packages="$packages postgresql"
  echo "${packages# }"
}

strict() { case "${CI:-}" in ""|false|0) return 1 ;; esac; }

missing="$(missing_packages)"
[ -z "$missing" ] && exit 0

if [ "$EUID" = 0 ] && command -v apt-get >/dev/null 2>&1; then
  echo "Installing system packages for the tests: $missing"
  if apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $missing >/dev/null; then
    missing="$(missing_packages)"
    [ -z "$missing" ] && exit 0
    advice="apt-get ran, yet $missing still lacks its programs (check PATH)"
  else
    advice="apt-get install $missing failed (see above); run it yourself"
  fi
elif command -v apt-get >/dev/null 2>&1; then
  advice="run: sudo apt-get install $missing"
else
  advice="install them with your package manager (Debian names: $missing)"
fi

if strict; then
  echo "error: the tests need the system packages $missing: $advice (CI=true skips no test)" >&2
  exit 1
fi
echo "Not installed: $missing; $advice. Until then the tests that need them are skipped (listed at the end)."
exit 0
