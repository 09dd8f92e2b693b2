#!/usr/bin/env bash
# Build and check the container image (`make image`, `make image-check`).
#
#   deploy/image.sh build   build deploy/Dockerfile as $IMAGE (default localhost/scim-service:latest)
#   deploy/image.sh check   build it, then run its entrypoint against a PostgreSQL and probe it
#
# Engine: docker when a Docker engine answers, else buildah (vfs storage, chroot isolation, the
# host's network), which needs no daemon, no cgroups and no user namespaces. The base image is the
# Dockerfile's PYTHON_IMAGE build argument (the official python:3.11-slim by default). When
# PYTHON_IMAGE is not set and that image cannot be pulled (no route to Docker Hub), `check` builds
# a local Debian bookworm base with mmdebstrap (python3 and pip from Debian's packages) and caches
# it, as a tarball in $SCIM_IMAGE_CACHE and as localhost/scim-base:bookworm in buildah's storage,
# so a rerun costs only the (layer-cached) image build.
#
# `check` needs a PostgreSQL reachable from the host (SCIM_TEST_DATABASE_URL, default
# postgresql://postgres@127.0.0.1:5432/postgres); it creates a database of its own and drops it.
set -euo pipefail
cd "$(dirname "$0")/.."

IMAGE=${IMAGE:-localhost/scim-service:latest}
DEFAULT_BASE=python:3.11-slim
LOCAL_BASE=localhost/scim-base:bookworm
CACHE_ROOT=${XDG_CACHE_HOME:-$HOME/.cache}
CACHE=${SCIM_IMAGE_CACHE:-$CACHE_ROOT/scim-service-image}
CA_BUNDLE=/etc/ssl/certs/ca-certificates.crt
BUILDAH=(buildah --storage-driver vfs)

log() { printf '[image] %s\n' "$*" >&2; }
die() { printf '[image] FAILED: %s\n' "$*" >&2; exit 1; }

engine() {
  if [ -n "${SCIM_IMAGE_ENGINE:-}" ]; then echo "$SCIM_IMAGE_ENGINE"; return; fi
  if command -v docker >/dev/null 2>&1 && timeout 10 docker info >/dev/null 2>&1; then
    echo docker
  elif command -v buildah >/dev/null 2>&1; then
    echo buildah
  else
    die "neither a Docker engine nor buildah (apt-get install buildah)"
  fi
}

# A Debian bookworm base with python3 and pip, for hosts that cannot reach Docker Hub.
local_base() {
  if "${BUILDAH[@]}" inspect --type image "$LOCAL_BASE" >/dev/null 2>&1; then
    log "local base $LOCAL_BASE (cached)"
    return
  fi
  mkdir -p "$CACHE"
  if [ ! -s "$CACHE/base.tar" ]; then
    command -v mmdebstrap >/dev/null 2>&1 || die "mmdebstrap missing (apt-get install mmdebstrap)"
    log "building the local Debian base with mmdebstrap (about 20 s)"
    # pip installs into the image's system Python, as in the official image: no
    # EXTERNALLY-MANAGED marker, and a `pip` command.
    mmdebstrap --quiet --variant=minbase \
      --include=python3,python3-pip,python-is-python3,ca-certificates,passwd \
      --customize-hook='rm -f "$1"/usr/lib/python3*/EXTERNALLY-MANAGED' \
      --customize-hook='ln -sf pip3 "$1"/usr/bin/pip' \
      bookworm "$CACHE/base.tar.tmp"
    mv "$CACHE/base.tar.tmp" "$CACHE/base.tar"
  fi
  local ctr
  ctr=$("${BUILDAH[@]}" from scratch)
  "${BUILDAH[@]}" add "$ctr" "$CACHE/base.tar" / >/dev/null
  "${BUILDAH[@]}" config --env PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin \
    --cmd /bin/bash "$ctr"
  "${BUILDAH[@]}" commit --quiet --rm "$ctr" "$LOCAL_BASE" >/dev/null
  log "local base $LOCAL_BASE built"
}

# Which base to build on: PYTHON_IMAGE when set; the official image when it can be pulled;
# else (only for `check`, or with SCIM_IMAGE_LOCAL_BASE=1) the local Debian base.
choose_base() {
  local allow_local=$1
  if [ -n "${PYTHON_IMAGE:-}" ]; then echo "$PYTHON_IMAGE"; return; fi
  if [ "$(engine)" = docker ]; then echo "$DEFAULT_BASE"; return; fi
  if "${BUILDAH[@]}" inspect --type image "docker.io/library/$DEFAULT_BASE" >/dev/null 2>&1 \
    || timeout 120 "${BUILDAH[@]}" pull --quiet "docker.io/library/$DEFAULT_BASE" >/dev/null 2>&1; then
    echo "$DEFAULT_BASE"
    return
  fi
  if [ "$allow_local" = 1 ] || [ "${SCIM_IMAGE_LOCAL_BASE:-0}" = 1 ]; then
    log "$DEFAULT_BASE cannot be pulled: using a local Debian base"
    local_base
    echo "$LOCAL_BASE"
    return
  fi
  die "$DEFAULT_BASE cannot be pulled: set PYTHON_IMAGE, or SCIM_IMAGE_LOCAL_BASE=1 for a local Debian base"
}

build() {
  local base started
  base=$(choose_base 1)
  started=$(date +%s)
  log "building $IMAGE on $base with $(engine)"
  if [ "$(engine)" = docker ]; then
    DOCKER_BUILDKIT=1 docker build -f deploy/Dockerfile --build-arg "PYTHON_IMAGE=$base" -t "$IMAGE" .
  else
    local mounts=()
    # pip inside the build verifies PyPI's certificate with the host's CA bundle (and so
    # through any TLS-inspecting proxy the host trusts).
    [ -r "$CA_BUNDLE" ] && mounts=(-v "$CA_BUNDLE:$CA_BUNDLE:ro")
    "${BUILDAH[@]}" bud --quiet --layers --format docker --isolation chroot --network host "${mounts[@]}" \
      --ignorefile deploy/Dockerfile.dockerignore \
      --build-arg "PYTHON_IMAGE=$base" -f deploy/Dockerfile -t "$IMAGE" . >/dev/null
    # vfs keeps a full copy of every layer: drop the untagged images of earlier builds so
    # repeated runs (CI) do not fill the disk; the tagged base and image stay.
    "${BUILDAH[@]}" rmi --prune >/dev/null 2>&1 || true
  fi
  log "built $IMAGE in $(($(date +%s) - started)) s"
}

image_size() {
  if [ "$(engine)" = docker ]; then
    docker image inspect --format '{{.Size}}' "$IMAGE" | awk '{printf "%.0f MB\n", $1 / 1e6}'
  else
    "${BUILDAH[@]}" images --format '{{.Size}}' "$IMAGE" | head -n 1
  fi
}

# --- check -------------------------------------------------------------------------------------
DB_ADMIN_URL=${SCIM_TEST_DATABASE_URL:-postgresql://postgres@127.0.0.1:5432/postgres}
DB_NAME=scim_image_check_$$_$(date +%s)
DB_URL=${DB_ADMIN_URL%/*}/$DB_NAME
WORK=""
CTR=""
SERVER_PID=""

cleanup() {
  set +e
  [ -n "$SERVER_PID" ] && kill "$SERVER_PID" 2>/dev/null && wait "$SERVER_PID" 2>/dev/null
  if [ -n "$CTR" ]; then
    if [ "$(engine)" = docker ]; then docker rm -f "$CTR" >/dev/null 2>&1; else "${BUILDAH[@]}" rm "$CTR" >/dev/null 2>&1; fi
  fi
  psql -q "$DB_ADMIN_URL" -c "DROP DATABASE IF EXISTS $DB_NAME WITH (FORCE)" >/dev/null 2>&1
  [ -n "$WORK" ] && rm -rf "$WORK"
}

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'; }

# The image's entrypoint with the given arguments, as uid 10001, on the host's network.
in_image() {
  if [ "$(engine)" = docker ]; then
    docker run --rm --network host --user 10001:10001 "${ENVS[@]}" "$IMAGE" "$@"
  else
    local envs=() e
    for e in "${ENVS[@]}"; do [ "$e" = -e ] || envs+=(--env "$e"); done
    "${BUILDAH[@]}" run --isolation chroot --network host --user 10001:10001 "${envs[@]}" "$CTR" -- scim-service "$@"
  fi
}

# The pid of the entrypoint process itself (buildah's chroot wrapper would not pass SIGTERM on).
entrypoint_pid() {
  local root=$1 pid children
  for _ in $(seq 1 50); do
    children=$root
    while [ -n "$children" ]; do
      local next=""
      for pid in $children; do
        if [ "$(ps -o comm= -p "$pid" 2>/dev/null)" = scim-service ]; then echo "$pid"; return; fi
        next="$next $(ps -o pid= --ppid "$pid" 2>/dev/null | tr '\n' ' ')"
      done
      children=$(echo "$next" | xargs)
    done
    sleep 0.1
  done
  return 1
}

check() {
  trap cleanup EXIT
  build 1
  WORK=$(mktemp -d)
  local port grace=10 started
  port=$(free_port)
  psql -q "$DB_ADMIN_URL" -c "CREATE DATABASE $DB_NAME" >/dev/null
  ENVS=(-e "DATABASE_URL=$DB_URL" -e SCIM_HOST=127.0.0.1 -e "SCIM_PORT=$port"
        -e "SCIM_PUBLIC_URL=http://127.0.0.1:$port" -e "SCIM_SHUTDOWN_GRACE=$grace"
        -e SCIM_LOG_LEVEL=info -e SCIM_PUBLISHER_POLL_INTERVAL=0.2)
  if [ "$(engine)" = docker ]; then
    CTR=scim-image-check-$$
    docker run -d --name "$CTR" --network host --user 10001:10001 "${ENVS[@]}" "$IMAGE" serve >/dev/null
    docker logs -f "$CTR" >"$WORK/serve.out" 2>"$WORK/serve.err" &
  else
    CTR=$("${BUILDAH[@]}" from --quiet "$IMAGE")
    in_image serve >"$WORK/serve.out" 2>"$WORK/serve.err" &
    SERVER_PID=$!
  fi
  local base=http://127.0.0.1:$port
  for _ in $(seq 1 300); do
    curl -fsS -o /dev/null "$base/readyz" 2>/dev/null && break
    if [ -n "$SERVER_PID" ] && ! kill -0 "$SERVER_PID" 2>/dev/null; then
      cat "$WORK/serve.err" >&2; die "the entrypoint exited before it was ready"
    fi
    sleep 0.1
  done
  curl -fsS -o /dev/null "$base/healthz" || die "/healthz did not answer 200"
  curl -fsS -o /dev/null "$base/readyz" || { tail -n 20 "$WORK/serve.err" >&2; die "/readyz did not answer 200"; }
  log "serve (uid 10001) answers /healthz and /readyz on :$port, migrations applied"

  # A token minted with the image's own CLI.
  local org token
  org=$(in_image org create "Image Check" --json 2>>"$WORK/cli.err" | jq -r .id)
  [ -n "$org" ] && [ "$org" != null ] || { cat "$WORK/cli.err" >&2; die "org create"; }
  token=$(in_image token create "$org" --json --description image-check 2>>"$WORK/cli.err" | jq -r .token)
  case "$token" in scim_*) ;; *) cat "$WORK/cli.err" >&2; die "token create printed no token" ;; esac
  log "organization $org and a token minted with the image's CLI"

  # A SCIM POST, and its event on the log sink (the entrypoint's stdout).
  local user_name=image.check.$$@example.com status user_id
  status=$(curl -sS -o "$WORK/post.json" -w '%{http_code}' -X POST "$base/scim/v2/Users" \
    -H "Authorization: Bearer $token" -H 'Content-Type: application/scim+json' \
    -d "{\"schemas\":[\"urn:ietf:params:scim:schemas:core:2.0:User\"],\"userName\":\"$user_name\"}")
  [ "$status" = 201 ] || { cat "$WORK/post.json" >&2; die "POST /scim/v2/Users answered $status"; }
  user_id=$(jq -r .id "$WORK/post.json")
  for _ in $(seq 1 100); do grep -q "$user_id" "$WORK/serve.out" && break; sleep 0.1; done
  grep "$user_id" "$WORK/serve.out" | grep -q '"type":"user.provisioned"' \
    || { tail -n 5 "$WORK/serve.out" >&2; die "no user.provisioned event for $user_id on the log sink"; }
  log "POST /scim/v2/Users 201 ($user_id), its user.provisioned event on the log sink"

  # SIGTERM to the entrypoint: exit 0 within the grace.
  local rc=0
  started=$(date +%s.%N)
  if [ "$(engine)" = docker ]; then
    docker kill --signal TERM "$CTR" >/dev/null
    rc=$(timeout $((grace + 5)) docker wait "$CTR") || die "no exit within $((grace + 5)) s of SIGTERM"
  else
    local pid
    pid=$(entrypoint_pid "$SERVER_PID") || die "entrypoint process not found"
    kill -TERM "$pid"
    for _ in $(seq 1 $(((grace + 5) * 10))); do kill -0 "$SERVER_PID" 2>/dev/null || break; sleep 0.1; done
    kill -0 "$SERVER_PID" 2>/dev/null && die "no exit within $((grace + 5)) s of SIGTERM"
    wait "$SERVER_PID" || rc=$?
    SERVER_PID=""
  fi
  local took
  took=$(python3 -c "import time; print(f'{time.time() - $started:.1f}')")
  [ "$rc" = 0 ] || { tail -n 20 "$WORK/serve.err" >&2; die "exit status $rc after SIGTERM"; }
  python3 -c "import sys; sys.exit(0 if $took <= $grace else 1)" || die "took $took s > grace $grace s"
  log "SIGTERM: exit 0 after $took s (grace $grace s)"
  log "image $IMAGE: $(image_size)"
  echo "image-check passed"
}

case "${1:-}" in
  build) build 0 ;;
  check) check ;;
  *) echo "usage: $0 build|check" >&2; exit 2 ;;
esac
