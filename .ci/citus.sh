#!/usr/bin/env bash
# Citus for the distributed tests (issue 22), on the machine's PostgreSQL 15: no registry these
# machines reach ships it, so it is built from ../shared/vendor/citus-13.2.2.tar.gz (the newest
# Citus line that accepts PostgreSQL 15) and its installed files are kept under target/citus/, so
# a later run only copies them into place. Usage: .ci/citus.sh [PG_CONFIG]; prints nothing when
# Citus is already there.
set -euo pipefail
cd "$(dirname "$0")/.."

pg_config=${1:-/usr/lib/postgresql/15/bin/pg_config}
version=13.2.2
tarball=${METRICSCTL_CITUS_TARBALL:-../shared/vendor/citus-$version.tar.gz}
pkglibdir=$("$pg_config" --pkglibdir)
sharedir=$("$pg_config" --sharedir)
staged=$PWD/target/citus/$version/install

sudo=""
if [ "$(id -u)" -ne 0 ]; then sudo="sudo"; fi

installed() { [ -f "$pkglibdir/citus.so" ] && [ -f "$sharedir/extension/citus.control" ]; }
if installed; then exit 0; fi

major=$("$pg_config" --version | sed 's/[^0-9]*\([0-9]*\).*/\1/')
if [ ! -x "$staged$pkglibdir/citus.so" ] && [ ! -f "$staged$pkglibdir/citus.so" ]; then
  if [ ! -f "$tarball" ]; then
    echo ".ci/citus.sh: $tarball not found; the distributed tests will say NOT RUN" >&2
    exit 1
  fi
  # Build dependencies; the server's dev package pinned to the installed server's version (the
  # unpinned candidate may upgrade the server too).
  server_version=$(dpkg-query -W -f='${Version}' "postgresql-$major" 2>/dev/null || true)
  missing=()
  if [ ! -f "$("$pg_config" --includedir-server)/postgres.h" ]; then
    missing+=("postgresql-server-dev-$major${server_version:+=$server_version}")
  fi
  for package in libkrb5-dev liblz4-dev libzstd-dev libcurl4-openssl-dev autoconf flex bison make gcc; do
    dpkg-query -W -f='${Status}' "$package" 2>/dev/null | grep -q "install ok installed" || missing+=("$package")
  done
  if [ "${#missing[@]}" -gt 0 ]; then
    echo ".ci/citus.sh: installing ${missing[*]}" >&2
    $sudo apt-get update -q
    DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -q --no-install-recommends "${missing[@]}"
  fi
  build=$PWD/target/citus/$version/build
  rm -rf "$build" "$staged"
  mkdir -p "$build"
  echo ".ci/citus.sh: building Citus $version for PostgreSQL $major (a few minutes, once)" >&2
  tar -xzf "$tarball" -C "$build" --strip-components=1
  (
    cd "$build"
    ./configure --quiet PG_CONFIG="$pg_config" >/dev/null
    make -s -j"$(nproc)" >/dev/null
    make -s install DESTDIR="$staged" >/dev/null
  )
  rm -rf "$build"
fi

echo ".ci/citus.sh: installing Citus $version into $pkglibdir and $sharedir/extension" >&2
$sudo cp -a "$staged$pkglibdir/." "$pkglibdir/"
$sudo cp -a "$staged$sharedir/extension/." "$sharedir/extension/"
installed
