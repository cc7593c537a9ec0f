#!/usr/bin/env bash
# podscope beside a base image's own start-up, never in its way.
#
# The base image's start-up (the container's command, else PODSCOPE_WRAPPED_CMD recorded at build
# time, e.g. /start.sh) runs exactly as it would without podscope: it is the workload, and the
# container's exit status is its status. Beside it:
#   - podscope, supervised: restarted with a bounded backoff whenever it exits or cannot start (a bad
#     configuration included), every failure written to the container log and to ComfyUI's log
#     file; its heap is capped so it cannot starve ComfyUI;
#   - the tap node, copied into custom_nodes of every ComfyUI found, also one that the base's
#     start-up puts into /workspace only on first boot.
# SIGTERM/SIGINT go to the base's start-up as they would without the wrapper; when it ends,
# podscope stops and whatever the start-up left running gets SIGTERM too.
set -uo pipefail

log() { printf '[podscope-wrap] %s\n' "$*" >&2; }

PODSCOPE_HOME="${PODSCOPE_HOME:-/opt/podscope}"
PODSCOPE_BIN="${PODSCOPE_BIN:-$PODSCOPE_HOME/bin/podscope.js}"
PODSCOPE_TAP_SRC="${PODSCOPE_TAP_SRC:-$PODSCOPE_HOME/comfyui/podscope_tap}"
PODSCOPE_NODE="${PODSCOPE_NODE:-node}"
PODSCOPE_MAX_OLD_SPACE_MB="${PODSCOPE_MAX_OLD_SPACE_MB:-256}"
PODSCOPE_RESTART_MAX_S="${PODSCOPE_RESTART_MAX_S:-60}"
PODSCOPE_TAP_POLL_S="${PODSCOPE_TAP_POLL_S:-2}"
# Where the supported bases put ComfyUI and its log (runpod/comfyui after its first boot, community
# images, worker-comfyui); COMFYUI_DIR first when set.
PODSCOPE_COMFYUI_DIRS="${COMFYUI_DIR:-} ${PODSCOPE_COMFYUI_DIRS:-/workspace/runpod-slim/ComfyUI /workspace/ComfyUI /comfyui /ComfyUI}"
PODSCOPE_COMFYUI_LOGS="${PODSCOPE_COMFYUI_LOGS:-/workspace/runpod-slim/comfyui.log /workspace/logs/comfyui.log}"

# A failure on-call should see: the container log, and ComfyUI's log file when there is one.
note() {
  log "$*"
  local f
  for f in ${COMFYUI_LOG_FILE:-} $PODSCOPE_COMFYUI_LOGS; do
    if [ -f "$f" ] && [ -w "$f" ]; then
      printf '[podscope-wrap] %s\n' "$*" >>"$f"
      return 0
    fi
  done
}

comfyui_dirs() {
  local d
  for d in $PODSCOPE_COMFYUI_DIRS; do
    if [ -f "$d/main.py" ] && [ -d "$d/custom_nodes" ]; then printf '%s\n' "$d"; fi
  done
}

# Copies the tap into one ComfyUI (atomically, only when it differs). A ComfyUI already running
# loads it at its next start.
install_tap() {
  local dest="$1/custom_nodes/podscope_tap"
  [ "${PODSCOPE_TAP:-on}" = "off" ] && return 0
  [ -f "$PODSCOPE_TAP_SRC/__init__.py" ] || return 0
  cmp -s "$PODSCOPE_TAP_SRC/__init__.py" "$dest/__init__.py" 2>/dev/null && return 0
  if mkdir -p "$dest" && cp "$PODSCOPE_TAP_SRC/__init__.py" "$dest/.__init__.py.new" && mv -f "$dest/.__init__.py.new" "$dest/__init__.py"; then
    log "podscope tap installed in $1/custom_nodes"
  else
    note "could not install the podscope tap in $1/custom_nodes; podscope works without it"
  fi
}

tap_installer() {
  trap 'exit 0' TERM
  while :; do
    while IFS= read -r dir; do install_tap "$dir"; done < <(comfyui_dirs)
    sleep "$PODSCOPE_TAP_POLL_S" &
    wait $!
  done
}

# What podscope needs to know about this layout, unless the template says it: the first ComfyUI and
# log file that exist, else the first candidates (podscope follows a log file once it appears, and
# runpod/comfyui creates both only on first boot, after podscope has started). A pod that runs
# several ComfyUIs (COMFYUI_URLS) names each one's files itself (COMFYUI_LOG_FILES…): a single file
# guessed here would fit none of them, so nothing is guessed.
podscope_env() {
  local d f dirs
  [ -n "${COMFYUI_URLS:-}" ] && return 0
  dirs="$(comfyui_dirs)"
  if [ -z "${COMFYUI_OUTPUT_DIR:-}" ]; then
    for d in $dirs $PODSCOPE_COMFYUI_DIRS; do
      export COMFYUI_OUTPUT_DIR="$d/output"
      break
    done
  fi
  if [ -z "${COMFYUI_LOG_FILE:-}" ]; then
    for f in $PODSCOPE_COMFYUI_LOGS; do
      if [ -f "$f" ]; then export COMFYUI_LOG_FILE="$f"; return 0; fi
    done
    for f in $PODSCOPE_COMFYUI_LOGS; do
      export COMFYUI_LOG_FILE="$f"
      break
    done
  fi
}

supervise_podscope() {
  local child="" delay=1 started code
  trap 'if [ -n "$child" ]; then kill -TERM "$child" 2>/dev/null; wait "$child"; fi; exit 0' TERM
  while :; do
    podscope_env
    started=$SECONDS
    MALLOC_ARENA_MAX="${MALLOC_ARENA_MAX:-2}" "$PODSCOPE_NODE" --max-old-space-size="$PODSCOPE_MAX_OLD_SPACE_MB" --max-semi-space-size=4 "$PODSCOPE_BIN" serve &
    child=$!
    wait "$child"
    code=$?
    child=""
    # A podscope that ran a while and then died starts again at once; one that keeps dying backs off.
    if [ $((SECONDS - started)) -ge 60 ]; then delay=1; fi
    note "podscope exited with status $code; starting it again in $delay s (ComfyUI is not affected)"
    sleep "$delay" &
    wait $!
    delay=$((delay * 2))
    if [ "$delay" -gt "$PODSCOPE_RESTART_MAX_S" ]; then delay="$PODSCOPE_RESTART_MAX_S"; fi
  done
}

if [ "$#" -eq 0 ]; then
  # shellcheck disable=SC2086 # a command line recorded at build time, split into words
  set -- ${PODSCOPE_WRAPPED_CMD:-}
fi
if [ "$#" -eq 0 ]; then
  log "no start-up to wrap: give the base image's command as arguments or set PODSCOPE_WRAPPED_CMD"
  exit 64
fi

log "starting the base image's start-up: $*"
"$@" &
base=$!

supervise_podscope &
supervisor=$!
tap_installer &
tapper=$!

# shellcheck disable=SC2317 # called from the traps below
forward() {
  log "received SIG$1: passing it to the base image's start-up"
  kill -s "$1" "$base" 2>/dev/null || true
}
trap 'forward TERM' TERM
trap 'forward INT' INT
trap 'forward HUP' HUP

# The base's start-up is the workload: wait for it (a trapped signal interrupts the wait).
while :; do
  wait "$base"
  status=$?
  if [ "$status" -le 128 ] || ! kill -0 "$base" 2>/dev/null; then break; fi
done
log "the base image's start-up ended with status $status; stopping podscope"
kill -TERM "$supervisor" "$tapper" 2>/dev/null
wait "$supervisor" "$tapper" 2>/dev/null
# Whatever the start-up left running in this process group (ComfyUI under nohup, say) stops too;
# only when the group is the wrapper's own (as PID 1 it is), never a parent's.
if [ "$(cut -d' ' -f5 "/proc/$$/stat" 2>/dev/null)" = "$$" ]; then
  trap '' TERM
  kill -TERM 0 2>/dev/null
fi
exit "$status"
