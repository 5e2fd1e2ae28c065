# shellcheck shell=bash
# Shared by scripts/test-docker.sh and scripts/test-scale.sh (sourced, not run): how they
# build, report and time.
export DOCKER_BUILDKIT=0 # the classic builder: what every Docker daemon has

log() { printf '\n== %s\n' "$*"; }
fail() {
  printf '\nFAIL: %s\n' "$*" >&2
  exit 1
}
now() { date +%s.%N; }
seconds_since() { awk -v start="$1" -v end="$(now)" 'BEGIN { printf "%.1f", end - start }'; }
