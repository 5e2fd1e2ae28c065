#!/usr/bin/env bash
# Digit Canvas at scale: the stack of deploy/compose.yaml (app replicas behind HAProxy) on a
# one-node Docker Swarm, driven with wrk through the load balancer on 127.0.0.1. Measures the
# throughput of 1 and 2 replicas at concurrency 16, kills a replica under load and counts
# the failed requests, performs a rolling update under load (target: none failed), checks
# that /metrics stays off the public port and that the logs are JSON, prints the figures,
# and removes all it made (stack, swarm, networks, images), also when a step fails. Run by
# `make test-scale`.
#
# Environment:
#   BASE_IMAGE     base of both images (default: the offline stand-in for python:3.11-slim
#                  that ../shared/tools/docker-offline-base names on its last line)
#   VENV_PYTHON    Python with the project's requirements (.venv/bin/python)
#   MNIST_DIR      the four MNIST IDX files (../shared/data/mnist), for the digit sent
#   LOAD_SECONDS   length of each throughput measurement (10)
#   TARGET_SCALING 2 replicas / 1 replica throughput, the issue's target (1.6): reported as
#                  met or MISSED when other work left the machine's cores to the test (at
#                  most BUSY_LIMIT cores, 0.25, taken by other processes or the hypervisor
#                  during the measurements: bench/neighbours.py), not judged otherwise; each
#                  measurement waits up to 20 s for a quiet moment, and is tried up to
#                  MEASURE_TRIES (3) times for a quiet one. What fails the test is a replica
#                  that serves less than a quarter of the requests (the balancer's job).
#   KEEP_IMAGES=1  keep the images afterwards
set -euo pipefail
cd "$(dirname "$0")/.."

VENV_PYTHON=${VENV_PYTHON:-.venv/bin/python}
export MNIST_DIR=${MNIST_DIR:-../shared/data/mnist}
LOAD_SECONDS=${LOAD_SECONDS:-10}
# A measurement, not a pass mark, on this machine: the balancer, Docker's port proxy, wrk
# and the kernel's networking share its two cores with the replicas, and its speed varies
# between runs (see the README's Scaling section).
TARGET_SCALING=${TARGET_SCALING:-1.6}
BUSY_LIMIT=${BUSY_LIMIT:-0.25}
MEASURE_TRIES=${MEASURE_TRIES:-3}
CONCURRENCY=16
MAX_TOTAL_SECONDS=480
STACK=digit-canvas-scale
APP_IMAGE=digit-canvas:scale-app
APP_IMAGE_V2=digit-canvas:scale-app-v2 # the same image under a new name: a new version
BUILDER_IMAGE=digit-canvas:scale-app-builder
LB_IMAGE=digit-canvas:scale-lb
DB_IMAGE=digit-canvas:scale-db
# shellcheck source=scripts/common.sh
source scripts/common.sh

test_start=$(now)
workdir=$(mktemp -d)
made_swarm=0
made_gwbridge=0
built=0
deployed=0
wrk_pid=""
cleanup() {
  local status=$?
  trap - EXIT
  local teardown_start
  teardown_start=$(now)
  if [[ -n "$wrk_pid" ]]; then
    kill "$wrk_pid" 2>/dev/null || true
  fi
  if [[ $deployed -eq 1 ]]; then
    if [[ $status -ne 0 ]]; then
      echo "-- the stack's services and the last lines of their logs:" >&2
      docker service ps --no-trunc "${STACK}_app" "${STACK}_lb" >&2 || true
      docker service logs --tail 20 "${STACK}_app" >&2 || true
      docker service logs --tail 20 "${STACK}_lb" >&2 || true
      docker service logs --tail 20 "${STACK}_db" >&2 || true
    fi
    docker stack rm "$STACK" >/dev/null 2>&1 || true
    # Services go at once; their containers and network a few seconds later.
    for _ in $(seq 1 90); do
      [[ -z "$(docker ps -aq --filter "label=com.docker.stack.namespace=$STACK")" &&
        -z "$(docker network ls -q --filter "label=com.docker.stack.namespace=$STACK")" ]] && break
      sleep 1
    done
    # The database's volume outlives a stack by design; this test's goes with it.
    docker volume rm "${STACK}_db-data" >/dev/null 2>&1 || true
  fi
  if [[ $made_swarm -eq 1 ]]; then
    docker swarm leave --force >/dev/null 2>&1 || true
  fi
  if [[ $made_gwbridge -eq 1 ]]; then
    # Made by the swarm and left behind by `docker swarm leave`.
    docker network rm docker_gwbridge >/dev/null 2>&1 || true
  fi
  if [[ $deployed -eq 1 ]]; then
    echo "stack, swarm and networks removed in $(seconds_since "$teardown_start") s; whole test" \
      "$(seconds_since "$test_start") s"
  fi
  if [[ $built -eq 1 && "${KEEP_IMAGES:-0}" != 1 ]]; then
    # Also removes the intermediate images of each build (they have no other tag).
    docker rmi "$APP_IMAGE" "$APP_IMAGE_V2" "$BUILDER_IMAGE" "$LB_IMAGE" "$DB_IMAGE" \
      >/dev/null 2>&1 || true
  elif [[ $built -eq 1 ]]; then
    echo "Kept $APP_IMAGE, $APP_IMAGE_V2, $BUILDER_IMAGE, $LB_IMAGE and $DB_IMAGE (KEEP_IMAGES=1)."
  fi
  rm -rf "$workdir"
  exit "$status"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

command -v docker >/dev/null || fail "docker is not installed"
command -v wrk >/dev/null || fail "wrk is not installed: 'make wrk' installs Debian's"
[[ -x "$VENV_PYTHON" ]] || fail "$VENV_PYTHON not found: run 'make install-dev' first"
BASE_IMAGE=${BASE_IMAGE:-$(../shared/tools/docker-offline-base | tail -n 1)}

# ---- helpers

app_containers() { docker ps -q --filter "label=com.docker.swarm.service.name=${STACK}_app"; }
stack_containers() { docker ps -q --no-trunc --filter "label=com.docker.stack.namespace=$STACK"; }
lb_container() { docker ps -q --filter "label=com.docker.swarm.service.name=${STACK}_lb"; }

# How many replicas the balancer has up, from its statistics page (CSV, status in field 18).
replicas_up() {
  local lb
  lb=$(lb_container)
  [[ -n "$lb" ]] || {
    echo 0
    return
  }
  docker exec "$lb" python -c "import urllib.request
print(urllib.request.urlopen('http://127.0.0.1:8404/stats;csv', timeout=2).read().decode())" \
    2>/dev/null | awk -F, '$1 == "app" && $2 != "BACKEND" && $18 == "UP"' | wc -l
}

# Requests each replica up behind the balancer has been sent so far, one number a line.
requests_per_replica() {
  docker exec "$(lb_container)" python -c "import urllib.request
print(urllib.request.urlopen('http://127.0.0.1:8404/stats;csv', timeout=2).read().decode())" |
    awk -F, '$1 == "app" && $2 != "BACKEND" && $18 == "UP" { print $8 }'
}

wait_for_replicas() {
  local count=$1 deadline=$((SECONDS + 120))
  until [[ "$(docker service ls --filter "name=${STACK}_app" --format '{{.Replicas}}')" == \
  "$count/$count" && "$(replicas_up)" -eq "$count" ]]; do
    ((SECONDS < deadline)) || fail "$count replicas are not up behind the balancer in 120 s"
    sleep 1
  done
}

# wrk against the balancer for $2 seconds, its report in the file $1.
wrk_command=()
run_wrk() {
  BENCH_BODY="$workdir/body" BENCH_CONTENT_TYPE="multipart/form-data; boundary=$boundary" \
    "${wrk_command[@]}" --duration "${2}s" "$url/api/predict" >"$1"
}
# The same in the background, wrk's own pid in wrk_pid (SIGINT: it stops and reports).
start_wrk() {
  BENCH_BODY="$workdir/body" BENCH_CONTENT_TYPE="multipart/form-data; boundary=$boundary" \
    "${wrk_command[@]}" --duration "${2}s" "$url/api/predict" >"$1" &
  wrk_pid=$!
}

# CPU seconds the machine spent on other work than this test so far (see the header).
others_cpu_seconds() {
  # shellcheck disable=SC2046 # one argument per container id
  "$VENV_PYTHON" -m bench.neighbours $$ $(stack_containers)
}

# Up to 20 s, until other work takes at most BUSY_LIMIT cores over 3 s.
wait_for_quiet() {
  local deadline=$((SECONDS + 20)) before after
  while ((SECONDS < deadline)); do
    before=$(others_cpu_seconds)
    sleep 3
    after=$(others_cpu_seconds)
    awk -v a="$after" -v b="$before" -v max="$BUSY_LIMIT" 'BEGIN { exit !((a - b) / 3 <= max) }' &&
      return
  done
  return 0 # measured all the same, and said so
}

# Throughput after a warm-up, wrk's report in $1 and in $1.figures "requests/s requests
# failed" with the cores other work used meanwhile: measured again, up to MEASURE_TRIES
# times, while other work takes more than BUSY_LIMIT cores; the quietest try is kept. (Run
# by this shell itself, not in a subshell: wrk's CPU time counts as this shell's children's.)
measure() {
  local output=$1 try before after started busy best=""
  for ((try = 1; try <= MEASURE_TRIES; try++)); do
    wait_for_quiet
    run_wrk "$workdir/warm-up" 3
    before=$(others_cpu_seconds)
    started=$(now)
    run_wrk "$output.try" "$LOAD_SECONDS"
    after=$(others_cpu_seconds)
    busy=$(awk -v a="$after" -v b="$before" -v t="$(seconds_since "$started")" \
      'BEGIN { printf "%.2f", (a - b) / t }')
    if [[ -z "$best" ]] || awk -v a="$busy" -v b="$best" 'BEGIN { exit !(a < b) }'; then
      best=$busy
      mv "$output.try" "$output"
      echo "$(wrk_figures "$output") $busy" >"$output.figures"
    fi
    awk -v a="$busy" -v max="$BUSY_LIMIT" 'BEGIN { exit !(a <= max) }' && break
    echo "(other work used $busy cores meanwhile)"
  done
}

# "requests/s requests failed" from wrk's report: failed are socket errors and non-2xx.
wrk_figures() {
  "$VENV_PYTHON" - "$1" <<'PY'
import re
import sys
from pathlib import Path

from bench.run import parse_wrk_output

text = Path(sys.argv[1]).read_text()
result = parse_wrk_output(text)
requests = int(re.search(r"(\d+) requests in", text).group(1))
print(f"{result.requests_per_second:.0f} {requests} {result.errors}")
PY
}

# deploy IMAGE REPLICAS LOG_LEVEL
db_password=$(od -An -N16 -tx1 /dev/urandom | tr -d ' \n')
deploy() {
  APP_IMAGE=$1 LB_IMAGE=$LB_IMAGE DB_IMAGE=$DB_IMAGE DB_PASSWORD=$db_password REPLICAS=$2 \
    PUBLIC_PORT=$port LOG_LEVEL=$3 \
    docker stack deploy --resolve-image never -c deploy/compose.yaml "$STACK" >/dev/null
}

# corrections_total: how many corrections the replica that answers has in the database.
corrections_total() {
  curl --silent --fail --max-time 10 "$url/api/feedback/stats" |
    "$VENV_PYTHON" -c 'import json, sys; print(json.load(sys.stdin)["total"])'
}

# ---- the request sent: a real MNIST test digit drawn on a canvas, as the page sends it

log "Drawing an MNIST test digit as a canvas PNG"
read -r boundary label < <(
  "$VENV_PYTHON" - "$workdir" <<'PY'
import io
import sys
from pathlib import Path

from PIL import Image

from bench.run import canvas_png, multipart_body

png, label = canvas_png()
body, boundary = multipart_body(png)
Path(sys.argv[1], "body").write_bytes(body)
# The same drawing as a photo would come: a JPEG, decoded in a process of its own.
photo = io.BytesIO()
drawing = Image.open(io.BytesIO(png)).convert("RGBA")
paper = Image.new("RGBA", drawing.size, "white")
Image.alpha_composite(paper, drawing).convert("RGB").save(photo, "JPEG")
Path(sys.argv[1], "digit.jpg").write_bytes(photo.getvalue())
print(boundary, label)
PY
)
echo "label $label, $(wc -c <"$workdir/body") bytes of multipart body"

# ---- images

log "Building $APP_IMAGE, $LB_IMAGE and $DB_IMAGE on $BASE_IMAGE"
build_start=$(now)
built=1
docker build --quiet --build-arg "BASE_IMAGE=$BASE_IMAGE" --target builder -t "$BUILDER_IMAGE" . >/dev/null
docker build --quiet --build-arg "BASE_IMAGE=$BASE_IMAGE" -t "$APP_IMAGE" . >/dev/null
docker tag "$APP_IMAGE" "$APP_IMAGE_V2"
docker build --quiet --build-arg "BASE_IMAGE=$BASE_IMAGE" -t "$LB_IMAGE" deploy/haproxy >/dev/null
docker build --quiet --build-arg "BASE_IMAGE=$BASE_IMAGE" -t "$DB_IMAGE" deploy/postgres >/dev/null
build_seconds=$(seconds_since "$build_start")
echo "built in $build_seconds s"

# ---- the stack, with one replica

log "Deploying the stack $STACK with 1 replica"
case "$(docker info --format '{{.Swarm.LocalNodeState}}')" in
inactive)
  docker network inspect docker_gwbridge >/dev/null 2>&1 || made_gwbridge=1
  made_swarm=1
  docker swarm init --advertise-addr 127.0.0.1 >/dev/null
  ;;
active) echo "Docker is in a swarm already: using it, and leaving it as it is" ;;
*) fail "Docker's swarm is in state $(docker info --format '{{.Swarm.LocalNodeState}}')" ;;
esac
port=$("$VENV_PYTHON" -c 'import socket
with socket.socket() as probe:
    probe.bind(("127.0.0.1", 0))
    print(probe.getsockname()[1])')
url="http://127.0.0.1:$port"
wrk_command=(wrk --threads 1 --connections "$CONCURRENCY" --timeout 10s --script bench/post.lua)
deploy_start=$(now)
deployed=1
# Throughput is measured without a log line per request: through Docker's log driver each
# costs about as much CPU as a tenth of a prediction, in the replica, dockerd and its shim
# (measured: dockerd and the shims took 0.1 core at 400 requests/s). The rolling update
# below turns them on, as a new version with a new setting.
deploy "$APP_IMAGE" 1 warning
wait_for_replicas 1
deadline=$((SECONDS + 60))
until curl --silent --fail --max-time 2 "$url/readyz" >/dev/null; do
  ((SECONDS < deadline)) || fail "no answer from the balancer at $url"
  sleep 0.5
done
echo "answering on $url $(seconds_since "$deploy_start") s after the deployment"
answer=$(curl --silent --fail --max-time 10 -H "Content-Type: multipart/form-data; boundary=$boundary" \
  --data-binary "@$workdir/body" "$url/api/predict")
predicted=$("$VENV_PYTHON" -c 'import json, sys; print(json.loads(sys.argv[1])["digit"])' "$answer")
[[ "$predicted" == "$label" ]] || fail "predicted $predicted through the balancer, the label is $label"
# A JPEG goes to the decoders' fork server, whose socket needs the writable /tmp of a
# replica whose root file system is read-only.
answer=$(curl --silent --fail --max-time 30 -H "Content-Type: image/jpeg" \
  --data-binary "@$workdir/digit.jpg" "$url/api/predict")
photo=$("$VENV_PYTHON" -c 'import json, sys; print(json.loads(sys.argv[1])["digit"])' "$answer")
[[ "$photo" == "$label" ]] || fail "predicted $photo for the JPEG, the label is $label"
echo "predicted $predicted for the canvas PNG and $photo for a JPEG, through the balancer: OK"

# ---- throughput: 1 replica, then 2

log "Throughput of 1 replica at concurrency $CONCURRENCY ($LOAD_SECONDS s)"
measure "$workdir/one"
read -r one_rps one_requests one_failed one_busy <"$workdir/one.figures"
echo "$one_rps requests/s, $one_failed failed of $one_requests; other work used $one_busy cores"

log "Throughput of 2 replicas at concurrency $CONCURRENCY ($LOAD_SECONDS s)"
docker service scale --detach "${STACK}_app=2" >/dev/null
wait_for_replicas 2
requests_per_replica >"$workdir/served-before"
measure "$workdir/two"
requests_per_replica >"$workdir/served-after"
read -r two_rps two_requests two_failed two_busy <"$workdir/two.figures"
# Each replica's share of the requests sent meanwhile: both must take theirs.
shares=$(paste "$workdir/served-before" "$workdir/served-after" |
  awk '{ served[NR] = $2 - $1; total += served[NR] }
       END { for (i = 1; i <= NR; i++) printf "%.0f%% ", 100 * served[i] / total }')
echo "shares of the requests: $shares"
for share in $shares; do
  ((${share%\%} >= 25)) || fail "a replica served $share of the requests: $shares"
done
scaling=$(awk -v a="$two_rps" -v b="$one_rps" 'BEGIN { printf "%.2f", a / b }')
echo "$two_rps requests/s, $two_failed failed of $two_requests: ${scaling}x one replica;" \
  "other work used $two_busy cores"
# shellcheck disable=SC2046 # one argument per container id
app_memory=$(docker stats --no-stream --format '{{.MemUsage}}' $(app_containers) |
  awk '{ print $1 }' | paste -sd ' ')
echo "memory of each replica after the load: $app_memory"

# ---- corrections: every replica writes to and reads from the one database

log "Corrections through the balancer, into the stack's PostgreSQL"
deadline=$((SECONDS + 60))
until status=$(curl --silent --output "$workdir/feedback" --write-out '%{http_code}' \
  --max-time 10 -F "file=@$workdir/digit.jpg" -F "label=$label" "$url/api/feedback") &&
  [[ "$status" == 201 ]]; do
  # 503 until the database has made its cluster and accepts connections.
  [[ "$status" == 503 ]] || fail "POST /api/feedback answered $status: $(cat "$workdir/feedback")"
  ((SECONDS < deadline)) || fail "the corrections database did not answer in 60 s"
  sleep 1
done
for _ in 1 2 3; do
  curl --silent --fail --max-time 10 -F "file=@$workdir/digit.jpg" -F "label=$label" \
    "$url/api/feedback" >/dev/null || fail "a correction was refused"
done
# The balancer sends consecutive requests to both replicas: each must see all four.
totals=$(for _ in 1 2 3 4; do corrections_total; done | sort -u | paste -sd ' ')
[[ "$totals" == 4 ]] || fail "the replicas report $totals corrections, 4 were acknowledged"
echo "4 corrections acknowledged, and every replica counts 4: OK"

# ---- a replica killed under load

log "Killing a replica under load (SIGKILL; Swarm starts another)"
start_wrk "$workdir/kill" 20
sleep 5
victim=$(app_containers | head -n 1)
docker kill "$victim" >/dev/null
echo "killed ${victim:0:12}"
wait "$wrk_pid"
wrk_pid=""
read -r kill_rps kill_requests kill_failed < <(wrk_figures "$workdir/kill")
echo "$kill_failed failed of $kill_requests ($kill_rps requests/s)"
wait_for_replicas 2

# ---- a rolling update under load

log "Rolling update to $APP_IMAGE_V2 (and LOG_LEVEL=info) under load"
start_wrk "$workdir/update" 300
sleep 3
update_start=$(now)
deploy "$APP_IMAGE_V2" 2 info
deadline=$((SECONDS + 180))
until [[ "$(docker service inspect --format '{{if .UpdateStatus}}{{.UpdateStatus.State}}{{end}}' \
"${STACK}_app")" == completed ]]; do
  state=$(docker service inspect --format '{{if .UpdateStatus}}{{.UpdateStatus.State}}{{end}}' \
    "${STACK}_app")
  [[ "$state" != rollback* && "$state" != paused ]] || fail "the update ended as $state"
  ((SECONDS < deadline)) || fail "the rolling update did not complete in 180 s"
  sleep 1
done
update_seconds=$(seconds_since "$update_start")
wait_for_replicas 2
sleep 2
kill -INT "$wrk_pid" # wrk stops and reports
wait "$wrk_pid"
wrk_pid=""
read -r update_rps update_requests update_failed < <(wrk_figures "$workdir/update")
echo "updated in $update_seconds s; $update_failed failed of $update_requests ($update_rps requests/s)"
images=$(docker service ps --filter desired-state=running --format '{{.Image}}' "${STACK}_app" |
  sort -u | paste -sd ' ')
[[ "$images" == "$APP_IMAGE_V2" ]] || fail "the replicas run $images after the update"
echo "both replicas run $APP_IMAGE_V2: OK"
totals=$(for _ in 1 2 3 4; do corrections_total; done | sort -u | paste -sd ' ')
[[ "$totals" == 4 ]] || fail "after the update the replicas report $totals corrections, not 4"
echo "the 4 corrections, after a replica was killed and both replaced: OK"

# ---- what operators see

log "Metrics and logs"
status=$(curl --silent --output /dev/null --write-out '%{http_code}' "$url/metrics")
[[ "$status" == 404 ]] || fail "GET /metrics through the balancer answered $status"
echo "GET /metrics through the balancer: 404"
metrics=$(docker exec "$(app_containers | head -n 1)" python -c "import urllib.request
print(urllib.request.urlopen('http://127.0.0.1:9100/metrics', timeout=5).read().decode())")
grep -q '^digit_canvas_http_requests_total{method="POST",route="/api/predict",status="200"}' \
  <<<"$metrics" || fail "a replica's metrics port shows no predictions"
echo "a replica's metrics port 9100: $(grep -c '^digit_canvas_' <<<"$metrics") samples"
# A replica's own log (`docker service logs` can hang on a task killed earlier).
docker logs --tail 50 "$(app_containers | head -n 1)" >"$workdir/app.log" 2>&1
"$VENV_PYTHON" - "$workdir/app.log" <<'PY' || fail "the app's log lines are not all JSON"
import json
import sys
from pathlib import Path

entries = [json.loads(line) for line in Path(sys.argv[1]).read_text().splitlines()]
requests = [entry for entry in entries if entry["logger"] == "digit_canvas.requests"]
assert requests and all(len(entry["request_id"]) == 32 for entry in requests)
print(f"the last {len(entries)} lines of the app's log: JSON, {len(requests)} request lines;")
print(json.dumps(requests[-1]))
PY

# ---- figures

total_seconds=$(seconds_since "$test_start")
log "Summary"
echo "images built in:                       $build_seconds s (on $BASE_IMAGE)"
echo "1 replica, concurrency $CONCURRENCY:             $one_rps requests/s ($one_failed failed)"
echo "2 replicas, concurrency $CONCURRENCY:            $two_rps requests/s ($two_failed failed)"
echo "2 replicas / 1 replica:                ${scaling}x (target >= $TARGET_SCALING)"
echo "each replica's share with 2:           $shares"
echo "cores used by other work meanwhile:    $one_busy and $two_busy (of $(nproc))"
echo "memory per replica after the load:     $app_memory"
echo "a replica killed under load:           $kill_failed failed of $kill_requests requests"
echo "rolling update under load:             $update_failed failed of $update_requests requests (target 0), $update_seconds s"
echo "corrections in PostgreSQL:             4 written through the balancer, 4 seen by each replica, before and after"
echo "whole test so far:                     $total_seconds s (target < $MAX_TOTAL_SECONDS s)"
# Two replicas need two cores: with neighbours taking some, the figure is theirs.
if awk -v a="$one_busy" -v b="$two_busy" -v max="$BUSY_LIMIT" 'BEGIN { exit !(a > max || b > max) }'; then
  echo "scaling not judged: other work used $one_busy and $two_busy cores (more than" \
    "$BUSY_LIMIT) while it was measured"
else
  if awk -v s="$scaling" -v target="$TARGET_SCALING" 'BEGIN { exit !(s >= target) }'; then
    echo "scaling target met: ${scaling}x >= $TARGET_SCALING"
  else
    echo "scaling target MISSED: ${scaling}x < $TARGET_SCALING"
  fi
fi
[[ "$one_failed" == 0 && "$two_failed" == 0 ]] || fail "requests failed in the throughput runs"
[[ "$update_failed" == 0 ]] || fail "$update_failed requests failed during the rolling update"
awk -v t="$total_seconds" -v max="$MAX_TOTAL_SECONDS" 'BEGIN { exit !(t < max) }' ||
  fail "the test took $total_seconds s (target < $MAX_TOTAL_SECONDS s)"
echo "all checks passed"
