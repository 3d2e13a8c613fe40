#!/usr/bin/env bash
# `make deploy-check`: the deployment files, checked without a cluster or a Docker daemon.
#   compose     `docker compose config` (Compose v2) resolves and validates docker-compose.yml;
#               deploy/compose_rules.py checks its hardening and who gets the private key
#   kubernetes  `kubernetes-validate --strict`: every manifest against the API's schemas
#   pods        deploy/pod_security.py: Pod Security "restricted" + this project's rules
#   image       hadolint, plus: base image pinned, numeric non-root USER, HEALTHCHECK, tini
#   systemd     `systemd-analyze verify` (no output allowed) and `security` rated "OK" or better
# Then each check is run once on a broken copy and must fail there: a check that cannot
# fail proves nothing.
#   deploy/check.sh [VENV_BIN]      (tools from deploy/install-check-tools.sh)
set -euo pipefail
cd "$(dirname "$0")/.."
bin=$(realpath "${1:-.venv/bin}")
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

# systemd-analyze's rating words (systemd 252): OK is an exposure from 1.0 to 4.9, MEDIUM
# from 5.0. --threshold counts in tenths.
MAX_EXPOSURE=49

check_compose() {  # DEPLOY_DIR
  # (Called from `if`, where set -e does not apply: each step returns its failure itself.)
  local project
  project=$(mktemp -d "$work/compose.XXXXXX")
  cp -r "$1" "$project/deploy"
  cp "$project/deploy/review-loop.env.example" "$project/deploy/review-loop.env"
  (cd "$project/deploy" && env -u COMPOSE_FILE -u COMPOSE_PROFILES \
    POSTGRES_PASSWORD=check REVIEW_LOOP_KEY_GID=10001 "$bin/docker-compose" config --format json) \
    >"$project/resolved.json" || return 1
  "$bin/python" -m deploy.compose_rules <"$project/resolved.json"
}

check_kubernetes() {  # FILE...
  "$bin/kubernetes-validate" --strict --quiet "$@"
}

check_pods() {  # UID FILE...
  local uid=$1
  shift
  "$bin/python" -m deploy.pod_security --uid "$uid" "$@"
}

image_uid() {  # DOCKERFILE: the uid of its last USER, which must be numeric uid:gid
  sed -n 's/^USER \([0-9][0-9]*\):[0-9][0-9]*$/\1/p' "$1" | tail -n 1
}

check_image() {  # DOCKERFILE
  local file=$1 ok=0 uid joined
  # One line per instruction: join the lines continued with a backslash.
  joined=$(sed -e ':a' -e '/\\$/N; s/\\\n *//; ta' "$file")
  "$bin/hadolint" --no-color --config deploy/hadolint.yaml "$file" || ok=1
  if grep -E '^FROM ' "$file" | grep -vqE '(:[0-9]+\.[0-9]+\.[0-9]+[^ ]*|@sha256:[0-9a-f]{64})( |$)'; then
    echo "$file: FROM must name an exact version (python:3.11.13-...) or a digest"
    ok=1
  fi
  uid=$(image_uid "$file")
  if [ -z "$uid" ] || [ "$uid" = 0 ]; then
    echo "$file: the last USER must be a numeric, non-root uid:gid"
    ok=1
  fi
  grep -qE '^HEALTHCHECK .*CMD \["review-loop", "healthcheck"\]' <<<"$joined" \
    || { echo "$file: no HEALTHCHECK running review-loop healthcheck"; ok=1; }
  grep -qE '^ENTRYPOINT \["/usr/bin/tini", "--"' <<<"$joined" \
    || { echo "$file: ENTRYPOINT must start with tini, which reaps agents' children"; ok=1; }
  return $ok
}

check_units() {  # UNIT_FILE...
  local root ok=0 names=() name out
  root=$(mktemp -d "$work/root.XXXXXX")
  # A root with systemd's own units and a stand-in for the virtualenv's executable, so that
  # verify can resolve dependencies and ExecStart= without installing anything.
  mkdir -p "$root/etc/systemd/system" "$root/usr/lib/systemd" "$root/opt/review-loop/venv/bin"
  cp -r "$(systemd_units_dir)" "$root/usr/lib/systemd/system"
  printf '#!/bin/sh\n' > "$root/opt/review-loop/venv/bin/review-loop"
  chmod +x "$root/opt/review-loop/venv/bin/review-loop"
  for unit in "$@"; do
    cp "$unit" "$root/etc/systemd/system/"
    name=$(basename "$unit")
    names+=("${name/@./@1.}")
  done
  # verify exits 0 on unknown keys and bad specifiers (it only warns): any output fails.
  out=$(systemd-analyze verify --root="$root" "${names[@]}" 2>&1) || ok=1
  if [ -n "$out" ]; then
    echo "$out"
    ok=1
  fi
  for unit in "$@"; do
    systemd-analyze security --offline=true --threshold="$MAX_EXPOSURE" "$unit" >"$work/security" 2>&1 \
      || { grep 'Overall' "$work/security"; grep '✗' "$work/security" | head -n 10; ok=1; continue; }
    grep 'Overall exposure' "$work/security" | sed 's/^→ //'
  done
  return $ok
}

systemd_units_dir() {
  for dir in /usr/lib/systemd/system /lib/systemd/system; do
    [ -f "$dir/sysinit.target" ] && { echo "$dir"; return; }
  done
  echo "no systemd unit directory with sysinit.target" >&2
  return 1
}

# The real files.
failed=0
run() {  # NAME COMMAND...
  local name=$1
  shift
  if "$@" >"$work/out" 2>&1; then
    echo "ok    $name"
    [ "$name" != systemd ] || sed 's/^/      /' "$work/out"
  else
    echo "FAIL  $name"
    sed 's/^/      /' "$work/out"
    failed=1
  fi
}
uid=$(image_uid deploy/Dockerfile)
run compose check_compose deploy
run kubernetes check_kubernetes deploy/kubernetes/*.yaml
run pods check_pods "${uid:-10001}" deploy/kubernetes/*.yaml
run image check_image deploy/Dockerfile
run systemd check_units deploy/systemd/*.service

# Each check on a broken copy: it must fail.
must_fail() {  # WHAT COMMAND...
  local what=$1
  shift
  if "$@" >"$work/out" 2>&1; then
    echo "FAIL  not caught: $what"
    failed=1
  else
    echo "ok    caught: $what"
    grep -v '^\(ok\|INFO\) ' "$work/out" | head -n 2 | cut -c 1-150 | sed 's/^/        /'
  fi
}
bad="$work/bad"
mkdir -p "$bad"
cp -r deploy "$bad/typo" && sed -i 's/^  read_only: true/  read_onyl: true/' "$bad/typo/docker-compose.yml"
must_fail "a misspelt key in docker-compose.yml" check_compose "$bad/typo"
cp -r deploy "$bad/writable" && sed -i '/^  read_only: true/d' "$bad/writable/docker-compose.yml"
must_fail "review-loop containers with a writable root" check_compose "$bad/writable"
cp -r deploy "$bad/no-group" && sed -i '/^    group_add:/,+1d' "$bad/no-group/docker-compose.yml"
must_fail "a worker that cannot read the key (no group_add)" check_compose "$bad/no-group"
sed 's/^          args: \["worker"\]/&\n          bogus: 1/' deploy/kubernetes/deployment-worker.yaml >"$bad/unknown-field.yaml"
must_fail "an unknown field in a Deployment" check_kubernetes "$bad/unknown-field.yaml"
sed 's/privileged: false/privileged: true/' deploy/kubernetes/deployment-worker.yaml >"$bad/privileged.yaml"
must_fail "a privileged worker pod" check_pods 10001 "$bad/privileged.yaml"
sed '/seccompProfile/d' deploy/kubernetes/deployment-web.yaml >"$bad/no-seccomp.yaml"
must_fail "a web pod without a seccomp profile" check_pods 10001 "$bad/no-seccomp.yaml"
sed 's/^FROM .*/FROM python:3.11-slim/' deploy/Dockerfile >"$bad/Dockerfile.floating"
must_fail "a floating base image tag" check_image "$bad/Dockerfile.floating"
{ cat deploy/Dockerfile; echo "USER root"; } >"$bad/Dockerfile.root"
must_fail "an image that runs as root" check_image "$bad/Dockerfile.root"
mkdir -p "$bad/unhardened" "$bad/misspelt"
sed '/^# Sandboxing/,/^\[Install\]/{/^\[Install\]/!d}' deploy/systemd/review-loop-web.service \
  >"$bad/unhardened/review-loop-web.service"
must_fail "a web unit without its sandboxing" check_units "$bad/unhardened/review-loop-web.service"
sed 's/^NoNewPrivileges=/NoNewPrivilege=/' deploy/systemd/review-loop-worker@.service \
  >"$bad/misspelt/review-loop-worker@.service"
must_fail "a misspelt directive in a unit" check_units "$bad/misspelt/review-loop-worker@.service"

exit $failed
