#!/usr/bin/env bash
# Image entrypoint: print where we are (kit commit, lock hash, torch, GPUs), then run
# reproduce.sh or the given command.
#
#   docker run IMAGE                       -> reproduce.sh smoke (the image's CMD)
#   docker run IMAGE strict-small          -> reproduce.sh strict-small   (a preset or an option)
#   docker run IMAGE reproduce.sh --list   -> as given
#   docker run IMAGE python -m babylm ...  -> as given
#
# BABYLM_QUIET=1 skips the summary (it imports torch, about two seconds).
set -euo pipefail
kit_root="$(cd "$(dirname "$(readlink -f "$0")")/.." && pwd)"

if [ "${BABYLM_QUIET:-0}" != 1 ]; then
    lock_sha=$(sha256sum "$kit_root/requirements.lock" 2>/dev/null | cut -c1-16 || echo none)
    echo "== babylm-kit image: commit ${BABYLM_COMMIT:-unknown}, requirements.lock sha256 ${lock_sha}" >&2
    # The kit's own summary (torch, CUDA, visible GPUs); a broken environment must not hide the
    # user's command, so a failure here is reported and the command still runs.
    python -m babylm env >&2 || echo "== warning: 'python -m babylm env' failed" >&2
    if command -v nvidia-smi >/dev/null 2>&1; then nvidia-smi -L >&2 || true; fi
fi

# A first word that is not a command (a preset such as "smoke", or an option such as "--list")
# is handed to reproduce.sh.
if [ $# -eq 0 ]; then
    set -- reproduce.sh smoke
elif ! command -v "$1" >/dev/null 2>&1; then
    set -- reproduce.sh "$@"
fi
exec "$@"
