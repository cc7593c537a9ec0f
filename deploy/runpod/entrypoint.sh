#!/usr/bin/env bash
# Starts ComfyUI and podscope side by side, forwards SIGTERM/SIGINT to both, and exits as soon as
# either of them dies (stopping the other), so the container never runs half a pod.
#
# ComfyUI: COMFYUI_START_CMD when set (for example the base image's own start script), else
# `python main.py $COMFYUI_ARGS` in the first ComfyUI directory found. Its output goes to the
# container's stdout and to COMFYUI_LOG_FILE, which podscope follows.
set -uo pipefail

log() { printf '[entrypoint] %s\n' "$*" >&2; }

COMFYUI_LOG_FILE="${COMFYUI_LOG_FILE:-/workspace/logs/comfyui.log}"
COMFYUI_ARGS="${COMFYUI_ARGS:---listen 0.0.0.0 --port 8188}"
PODSCOPE_BIN="${PODSCOPE_BIN:-/opt/podscope/bin/podscope.js}"
PODSCOPE_TAP_SRC="${PODSCOPE_TAP_SRC:-/opt/podscope/comfyui/podscope_tap}"
export COMFYUI_LOG_FILE

find_comfyui() {
  local d
  for d in "${COMFYUI_DIR:-}" /workspace/runpod-slim/ComfyUI /workspace/ComfyUI /comfyui /ComfyUI; do
    if [ -n "$d" ] && [ -f "$d/main.py" ]; then
      printf '%s' "$d"
      return 0
    fi
  done
  return 1
}

install_tap() {
  local dir="$1"
  if [ "${PODSCOPE_TAP:-on}" = "off" ] || [ ! -d "$PODSCOPE_TAP_SRC" ] || [ ! -d "$dir/custom_nodes" ]; then
    return 0
  fi
  if cp -r "$PODSCOPE_TAP_SRC" "$dir/custom_nodes/"; then
    log "podscope tap installed in $dir/custom_nodes"
  else
    log "could not install the podscope tap in $dir/custom_nodes; podscope works without it"
  fi
}

mkdir -p "$(dirname "$COMFYUI_LOG_FILE")"
touch "$COMFYUI_LOG_FILE"

if [ -n "${COMFYUI_START_CMD:-}" ]; then
  if dir="$(find_comfyui)"; then install_tap "$dir"; fi
  log "starting ComfyUI: $COMFYUI_START_CMD"
  bash -c "$COMFYUI_START_CMD" > >(tee -a "$COMFYUI_LOG_FILE") 2>&1 &
else
  if ! dir="$(find_comfyui)"; then
    log "no ComfyUI found (set COMFYUI_DIR or COMFYUI_START_CMD)"
    exit 1
  fi
  install_tap "$dir"
  python="python3"
  if [ -x "$dir/.venv/bin/python" ]; then python="$dir/.venv/bin/python"; fi
  if [ -x /opt/venv/bin/python ]; then python=/opt/venv/bin/python; fi
  log "starting ComfyUI in $dir with $python"
  # shellcheck disable=SC2086 # COMFYUI_ARGS is a list of arguments
  (cd "$dir" && exec "$python" -u main.py $COMFYUI_ARGS) > >(tee -a "$COMFYUI_LOG_FILE") 2>&1 &
fi
comfy_pid=$!

log "starting podscope"
node --max-semi-space-size=4 "$PODSCOPE_BIN" serve &
podscope_pid=$!

stop_all() {
  log "stopping ComfyUI ($comfy_pid) and podscope ($podscope_pid)"
  kill -TERM "$comfy_pid" "$podscope_pid" 2>/dev/null || true
}
trap 'stop_all' TERM INT

# Wait for the first of the two to end; a trapped signal also ends the wait.
wait -n "$comfy_pid" "$podscope_pid"
status=$?
stop_all
wait "$comfy_pid" 2>/dev/null
wait "$podscope_pid" 2>/dev/null
log "exiting with status $status"
exit "$status"
