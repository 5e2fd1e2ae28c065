#!/usr/bin/env bash
# Build the Docker image, run it, and check what operators rely on: it becomes healthy, it
# classifies a real drawing of a digit, the server does not run as root, and `docker stop`
# shuts it down quickly and cleanly. Prints the image size and the time from `docker run` to
# the first successful prediction. Run by `make test-docker`.
#
# Environment:
#   BASE_IMAGE     passed to the build as --build-arg BASE_IMAGE (default: the Dockerfile's)
#   IMAGE          tag to build (default digit-canvas:test; the builder stage gets IMAGE-builder)
#   KEEP_IMAGE=1   keep the images afterwards (the container is always removed)
#   VENV_PYTHON    Python with the project's requirements, to draw the digit (.venv/bin/python)
#   MNIST_DIR      the four MNIST IDX files (../shared/data/mnist)
#   READY_TIMEOUT  seconds to wait for the server to answer (120)
set -euo pipefail
cd "$(dirname "$0")/.."

IMAGE=${IMAGE:-digit-canvas:test}
BUILDER_IMAGE="${IMAGE}-builder"
VENV_PYTHON=${VENV_PYTHON:-.venv/bin/python}
MNIST_DIR=${MNIST_DIR:-../shared/data/mnist}
READY_TIMEOUT=${READY_TIMEOUT:-120}
DIGIT_INDEX=0 # MNIST test digit 0, a 7
MAX_STOP_SECONDS=10
# shellcheck source=scripts/common.sh
source scripts/common.sh

container=""
built=0
workdir=$(mktemp -d)
cleanup() {
  local status=$?
  if [[ -n "$container" ]]; then
    if [[ $status -ne 0 ]]; then
      echo "-- last lines of the container's log:" >&2
      docker logs --tail 40 "$container" >&2 || true
    fi
    # --volumes: the anonymous volume of /app/data goes with it.
    docker rm --force --volumes "$container" >/dev/null 2>&1 || true
  fi
  if [[ $built -eq 1 && "${KEEP_IMAGE:-0}" != 1 ]]; then
    # Also removes the intermediate images of each stage (they have no other tag).
    docker rmi "$IMAGE" "$BUILDER_IMAGE" >/dev/null 2>&1 || true
  elif [[ $built -eq 1 ]]; then
    echo "Kept $IMAGE and $BUILDER_IMAGE (KEEP_IMAGE=1)."
  fi
  rm -rf "$workdir"
  exit "$status"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

command -v docker >/dev/null || fail "docker is not installed"
[[ -x "$VENV_PYTHON" ]] || fail "$VENV_PYTHON not found: run 'make install-dev' first"

log "Drawing MNIST test digit $DIGIT_INDEX as a 280x280 canvas PNG"
label=$(
  "$VENV_PYTHON" - "$MNIST_DIR" "$DIGIT_INDEX" "$workdir/digit.png" <<'PY'
import sys
from pathlib import Path

from app.training.data import load_idx_directory
from app.training.drawings import DrawingStyle, render_drawing

data = load_idx_directory(Path(sys.argv[1]))
index = int(sys.argv[2])
Path(sys.argv[3]).write_bytes(render_drawing(data.x_test[index], DrawingStyle()))
print(int(data.y_test[index]))
PY
)
echo "label $label, $(wc -c <"$workdir/digit.png") bytes"

build_args=()
if [[ -n "${BASE_IMAGE:-}" ]]; then
  build_args+=(--build-arg "BASE_IMAGE=$BASE_IMAGE")
fi
log "Building $IMAGE${BASE_IMAGE:+ on $BASE_IMAGE}"
build_start=$(now)
built=1
# The builder stage gets its own tag so that cleaning up can remove it too.
docker build ${build_args[@]+"${build_args[@]}"} --target builder -t "$BUILDER_IMAGE" .
docker build ${build_args[@]+"${build_args[@]}"} -t "$IMAGE" .
echo "built in $(seconds_since "$build_start") s"

user=$(docker image inspect --format '{{.Config.User}}' "$IMAGE")
[[ -n "$user" && "${user%%:*}" != 0 && "${user%%:*}" != root ]] ||
  fail "the image's USER is '${user}', i.e. root"
size_bytes=$(docker image inspect --format '{{.Size}}' "$IMAGE")
size_mb=$(awk -v b="$size_bytes" 'BEGIN { printf "%.0f", b / 1e6 }')
base_ref=${BASE_IMAGE:-python:3.11-slim}
if base_bytes=$(docker image inspect --format '{{.Size}}' "$base_ref" 2>/dev/null); then
  added_mb=$(awk -v a="$size_bytes" -v b="$base_bytes" 'BEGIN { printf "%.0f", (a - b) / 1e6 }')
  size_note="$size_mb MB ($added_mb MB on top of $base_ref)"
else
  size_note="$size_mb MB"
fi
echo "image size: $size_note"
# Serving runs without TensorFlow; the image must not carry it.
if docker run --rm "$IMAGE" python -c 'import importlib.util, sys
sys.exit(0 if any(importlib.util.find_spec(m) for m in ("tensorflow", "keras")) else 1)'; then
  fail "TensorFlow or Keras is installed in the image"
fi
echo "no TensorFlow or Keras in the image: OK"

log "Running $IMAGE"
run_start=$(now)
# A host port chosen by Docker (always a free one); health probed every 2 s instead of the
# image's 30 s, so that the image's own HEALTHCHECK is exercised within this test.
container=$(docker run --detach --publish 127.0.0.1::8000 --health-interval 2s "$IMAGE")
port=$(docker port "$container" 8000/tcp | head -n 1)
port=${port##*:}
url="http://127.0.0.1:$port"
echo "container ${container:0:12} on $url"

deadline=$((SECONDS + READY_TIMEOUT))
until curl --silent --fail --max-time 2 "$url/healthz" >/dev/null; do
  [[ "$(docker inspect --format '{{.State.Running}}' "$container")" == true ]] ||
    fail "the container exited before it answered"
  ((SECONDS < deadline)) || fail "no answer from $url/healthz within $READY_TIMEOUT s"
  sleep 0.05
done

log "Predicting"
response="$workdir/response.json"
curl --silent --show-error --fail --max-time 30 -F "file=@$workdir/digit.png;type=image/png" \
  "$url/api/predict" -o "$response" || fail "POST /api/predict failed"
first_prediction=$(seconds_since "$run_start")
cat "$response"
echo
predicted=$("$VENV_PYTHON" -c 'import json, sys; print(json.load(open(sys.argv[1]))["digit"])' "$response")
[[ "$predicted" == "$label" ]] || fail "predicted $predicted, the label is $label"
echo "predicted $predicted, the label is $label: OK"
# A correction is kept in the image's data volume, writable by the server's user.
feedback_status=$(curl --silent --output /dev/null --write-out '%{http_code}' --max-time 30 \
  -F "file=@$workdir/digit.png;type=image/png" -F "label=$label" "$url/api/feedback")
[[ "$feedback_status" == 201 ]] || fail "POST /api/feedback answered $feedback_status"
echo "a correction was kept: OK"
# Operators export them from the running container, as MNIST files.
exported=$(docker exec "$container" python -m app.feedback export --out /tmp/corrections) ||
  fail "python -m app.feedback export failed in the container"
[[ "$exported" == "1 training and 0 test corrections written to /tmp/corrections" ]] ||
  fail "the export said: $exported"
echo "exported from the container: OK"
curl --silent --fail --max-time 5 "$url/readyz" >/dev/null || fail "GET /readyz failed"
curl --silent --fail --max-time 5 "$url/api/model" >/dev/null || fail "GET /api/model failed"
# The drawing page and its assets: templates/ and static/ are in the image.
curl --silent --fail --max-time 5 "$url/" -o "$workdir/index.html" || fail "GET / failed"
assets=$(grep -o '/static/[^"]*' "$workdir/index.html" || true)
[[ -n "$assets" ]] || fail "the page links no /static/ asset"
for asset in $assets; do
  curl --silent --fail --max-time 5 "$url$asset" >/dev/null || fail "GET $asset failed"
done
echo "the page and its $(wc -w <<<"$assets") assets: OK"

log "Docker's health status"
until [[ "$(docker inspect --format '{{.State.Health.Status}}' "$container")" == healthy ]]; do
  ((SECONDS < deadline)) || fail "the container is not healthy after $READY_TIMEOUT s: \
$(docker inspect --format '{{json .State.Health}}' "$container")"
  sleep 0.5
done
echo healthy

log "The server's user"
exec_uid=$(docker exec "$container" id -u)
[[ "$exec_uid" != 0 ]] || fail "docker exec runs as root"
echo "id -u inside the container: $exec_uid"
docker top "$container" -eo uid,pid,args
process_uids=$(docker top "$container" -eo uid,pid | tail -n +2 | awk '{ print $1 }')
[[ -n "$process_uids" ]] || fail "docker top lists no process"
if grep -qx 0 <<<"$process_uids"; then
  fail "a process in the container runs as root"
fi
echo "no process runs as root: OK"

log "docker stop"
stop_start=$(now)
# A generous timeout, so that a server ignoring SIGTERM shows up as a slow stop, not as
# Docker's SIGKILL after its default 10 s.
docker stop --time 30 "$container" >/dev/null
stop_seconds=$(seconds_since "$stop_start")
exit_code=$(docker inspect --format '{{.State.ExitCode}}' "$container")
echo "stopped in $stop_seconds s, exit code $exit_code"
awk -v s="$stop_seconds" -v max="$MAX_STOP_SECONDS" 'BEGIN { exit !(s <= max) }' ||
  fail "docker stop took $stop_seconds s (more than $MAX_STOP_SECONDS s)"
# 0: Python as PID 1 ends normally after uvicorn's shutdown; 143 (SIGTERM) if run with --init.
[[ "$exit_code" == 0 || "$exit_code" == 143 ]] || fail "exit code $exit_code after docker stop"
# Read whole first: grep -q stops at the first match, and with pipefail the SIGPIPE that
# docker logs then gets would count as a failure.
container_log=$(docker logs "$container" 2>&1)
grep -q "Application shutdown complete" <<<"$container_log" ||
  fail "the log shows no graceful shutdown"
echo "graceful shutdown: OK"

log "Summary"
echo "image:                                 $IMAGE, $size_note"
echo "docker run to first prediction:        $first_prediction s"
echo "docker stop:                           $stop_seconds s (exit code $exit_code)"
echo "all checks passed"
