#!/usr/bin/env bash
# Build the kit's image with podman and run it offline: the recipe CI uses where no Docker engine
# runs and registries are unreachable (see docker/README.md). Run as root on a Debian host.
#
#   docker/build-image.sh [CHECK ...]        CHECK: env | tests | smoke   (default: env tests smoke)
#
#   env    the image's entrypoint summary + `python -m babylm env`
#   tests  the unit tests inside the image (the reference data bind-mounted read-only); the image
#          is then built with the development tools (INSTALL_DEV=1: requirements-dev.lock)
#   smoke  `reproduce.sh smoke` inside the image (with the reference data's data/eval mounted as
#          BABYLM_EVAL_DATA when it is there; BABYLM_EWOK_PASSWORD passed on), outputs on a bind
#          mount, then the validate step again from a fresh container
#
# Every container runs with --network=none. Nothing is pushed or pulled.
#
#   BABYLM_CI_CACHE   cache outside the checkout (base image tarball, its .debs, the wheelhouse)
#                                                                       (default: /var/cache/babylm-ci)
#   BABYLM_IMAGE      tag of the built image                            (default: localhost/babylm-kit:ci)
#   BABYLM_SHARED     reference data for the tests and the smoke run   (default: where
#                     `python -m tests.reference` finds it; none: the smoke run uses no official data)
#   BABYLM_CI_OUT     where the smoke run's outputs land                (default: $BABYLM_CI_CACHE/outputs)
#   TORCH_WHEEL       the local CPU torch wheel                (default: /opt/wheels/torch-2.13.0+cpu-*.whl)
#   DEBIAN_MIRROR     mirror for debootstrap                            (default: http://deb.debian.org/debian)
set -euo pipefail
cd "$(dirname "$0")/.."
repo=$(pwd)

checks=("$@")
[ ${#checks[@]} -gt 0 ] || checks=(env tests smoke)
install_dev=0
for c in "${checks[@]}"; do
    case "$c" in env|smoke) ;; tests) install_dev=1 ;;
        *) echo "error: unknown check '$c' (choose from: env tests smoke)" >&2; exit 2 ;; esac
done
# The lock the image is built from: the runtime one, or the development one for the tests.
lock=requirements.lock
[ "$install_dev" = 0 ] || lock=requirements-dev.lock

cache=${BABYLM_CI_CACHE:-/var/cache/babylm-ci}
image=${BABYLM_IMAGE:-localhost/babylm-kit:ci}
base=localhost/bookworm-py311:local
shared=${BABYLM_SHARED:-}
out=${BABYLM_CI_OUT:-$cache/outputs}
mirror=${DEBIAN_MIRROR:-http://deb.debian.org/debian}
image_uid=1000  # the Dockerfile's default UID: the user that writes into the bind-mounted outputs

t_all=$SECONDS
phase() { echo; echo "=== [build-image] $1 ($(( SECONDS - t_all )) s so far)"; }

# --- 1. tools --------------------------------------------------------------------------------
phase "tools: podman buildah runc debootstrap"
if ! command -v podman >/dev/null || ! command -v runc >/dev/null || ! command -v debootstrap >/dev/null \
        || ! command -v buildah >/dev/null; then
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq
    apt-get install -y -qq podman buildah runc debootstrap >/dev/null
fi
podman --version

# --- 2. wheelhouse: the locked wheels, fetched on the host (in the background) ---------------
# The host's pip has its configured indexes and cache (local file indexes where the machine has
# them), so the build itself then needs no network. Hashes are checked here and again by the
# install inside the image. A stamp with the lock's hash skips the fetch when nothing changed;
# wheels of older locks may linger (the lock's pins pick). It runs while debootstrap works.
phase "wheelhouse $cache/wheelhouse (background)"
wheel=${TORCH_WHEEL:-$(ls /opt/wheels/torch-2.13.0+cpu-*.whl 2>/dev/null | head -1)}
[ -f "$wheel" ] || { echo "error: no local torch wheel (set TORCH_WHEEL)" >&2; exit 1; }
host_python=python3
[ -x .venv/bin/python ] && host_python=.venv/bin/python
# The wheels must suit the image's Python 3.11 (the version the lock was compiled for).
"$host_python" -c 'import sys; assert sys.version_info[:2] == (3, 11), sys.version' 2>/dev/null \
    || { echo "error: $host_python is not Python 3.11 (the image's); run docker/install.sh first" >&2; exit 1; }
[ -n "$shared" ] || shared=$("$host_python" -m tests.reference 2>/dev/null) || shared=""
wheelhouse=$cache/wheelhouse
wheelhouse_stamp=$wheelhouse/.$lock.sha256
lock_sha=$(sha256sum "$lock" | cut -d' ' -f1)
mkdir -p "$wheelhouse"
fetch_wheels() {
    [ "$(cat "$wheelhouse_stamp" 2>/dev/null)" != "$lock_sha" ] || return 0
    rm -f "$wheelhouse_stamp"
    "$host_python" -m pip download --quiet --disable-pip-version-check --no-deps --require-hashes \
        -r "$lock" -d "$wheelhouse" >"$cache/wheelhouse.log" 2>&1 \
        || { tail -20 "$cache/wheelhouse.log" >&2; return 1; }
    echo "$lock_sha" >"$wheelhouse_stamp"
    echo "[build-image] wheelhouse fetched ($(( SECONDS - t_all )) s so far)"
}
fetch_wheels &
wheels_pid=$!

# --- 3. base image: Debian bookworm (python3 is 3.11) made by debootstrap, cached ---------------
# Only what install.sh needs: python3 and its venv module (ensurepip brings pip and setuptools
# into the venv). The .debs stay in the cache, so a rebuild of the base downloads nothing.
phase "base image $base"
mkdir -p "$cache/debs"
if ! podman image exists "$base"; then
    tarball="$cache/bookworm-py311.tar"
    if [ ! -f "$tarball" ]; then
        rootfs=$(mktemp -d "$cache/rootfs.XXXXXX")
        log="$cache/debootstrap.log"
        # Two stages, so that dpkg can run without an fsync per file in between (force-unsafe-io:
        # about 45 s less on 2 cores; a half-written rootfs is thrown away anyway).
        debootstrap --foreign --variant=minbase --include=python3,python3-venv --cache-dir="$cache/debs" \
            bookworm "$rootfs" "$mirror" >"$log" 2>&1 || { tail -20 "$log" >&2; exit 1; }
        mkdir -p "$rootfs/etc/dpkg/dpkg.cfg.d"
        echo force-unsafe-io >"$rootfs/etc/dpkg/dpkg.cfg.d/babylm-unsafe-io"
        chroot "$rootfs" /debootstrap/debootstrap --second-stage >>"$log" 2>&1 || { tail -20 "$log" >&2; exit 1; }
        rm -f "$rootfs/etc/dpkg/dpkg.cfg.d/babylm-unsafe-io"
        rm -rf "$rootfs"/var/cache/apt/archives/*.deb "$rootfs"/var/lib/apt/lists/*
        tar -C "$rootfs" -cf "$tarball.tmp" .
        mv "$tarball.tmp" "$tarball"
        rm -rf "$rootfs"
    fi
    podman import "$tarball" "$base" >/dev/null
fi

# --- 4. the kit's image --------------------------------------------------------------------
phase "wait for the wheelhouse"
wait "$wheels_pid" || { echo "error: fetching the wheelhouse failed (log: $cache/wheelhouse.log)" >&2; exit 1; }
phase "podman build $image"
commit=$(git rev-parse HEAD 2>/dev/null || echo unknown)
if [ "$commit" != unknown ] && [ -n "$(git status --porcelain --untracked-files=no 2>/dev/null)" ]; then
    commit="$commit-dirty"
fi
# --format docker keeps the Dockerfile's SHELL (OCI images have no such field).
# --isolation=chroot: RUN steps fail under the default OCI runtime here (cgroups).
# The torch wheel and the wheelhouse are bind-mounted, not COPY'd, so they stay out of the image
# layers; install.sh installs from them with no index (WHEELHOUSE), so the build is offline.
podman build --isolation=chroot --pull=never --format docker \
    -v "$(dirname "$wheel"):/wheels:ro" \
    -v "$wheelhouse:/wheelhouse:ro" \
    --build-arg BASE_IMAGE="$base" \
    --build-arg TORCH_SPEC="/wheels/$(basename "$wheel")" \
    --build-arg TORCH_INDEX= \
    --build-arg TORCH_DEPS=0 \
    --build-arg WHEELHOUSE=/wheelhouse \
    --build-arg INSTALL_DEV="$install_dev" \
    --build-arg BABYLM_COMMIT="$commit" \
    -t "$image" -f Dockerfile .
podman image inspect "$image" --format 'image size: {{.Size}} bytes'

# --- 5. run it, offline ----------------------------------------------------------------------
# runc (crun fails on this host's cgroups and rlimits) with explicit ulimits.
run=(podman run --rm --runtime runc --ulimit nofile=1024:1024 --ulimit nproc=1024:1024 --network=none
     -e HF_HUB_OFFLINE=1 -e HF_DATASETS_OFFLINE=1)
for c in "${checks[@]}"; do
    case "$c" in
    env)
        phase "check env: entrypoint summary"
        "${run[@]}" "$image" python -c "import babylm, eval_export, torch; print('imports ok, torch', torch.__version__)"
        ;;
    tests)
        phase "check tests: pytest inside the image"
        [ -n "$shared" ] && [ -d "$shared/data" ] \
            || { echo "error: reference data not found (set BABYLM_SHARED; see tests/reference.py)" >&2; exit 1; }
        "${run[@]}" -e BABYLM_QUIET=1 -e BABYLM_SHARED=/shared -v "$(cd "$shared" && pwd):/shared:ro" \
            "$image" python -m pytest -q -p no:cacheprovider -x
        ;;
    smoke)
        phase "check smoke: reproduce.sh smoke, then validate the submission"
        mkdir -p "$out"
        rm -rf "$out/smoke"
        chown "$image_uid:$image_uid" "$out"
        # The official evaluation data (read-only) adds the fine-tuning step (RTE) to the smoke run.
        eval_mount=()
        if [ -n "$shared" ] && [ -d "$shared/data/eval/glue_filtered" ]; then
            eval_mount=(-v "$(cd "$shared/data/eval" && pwd):/data/eval:ro" -e BABYLM_EVAL_DATA=/data/eval)
        fi
        # EWoK-fast is scored when its password is given (passed by name: it stays out of the logs)
        [ -z "${BABYLM_EWOK_PASSWORD:-}" ] || eval_mount+=(-e BABYLM_EWOK_PASSWORD)
        # the guide's `docker run ... IMAGE smoke`: the entrypoint hands the preset to reproduce.sh
        "${run[@]}" "${eval_mount[@]}" -v "$out:/outputs" "$image" smoke
        # Validate again from a fresh container, on the files as they landed on the host: the
        # validate step's marker is removed so that reproduce.sh runs the check itself.
        rm -f "$out/smoke/validation.txt"
        "${run[@]}" "${eval_mount[@]}" -e BABYLM_QUIET=1 -v "$out:/outputs" "$image" reproduce.sh --only validate smoke
        test -s "$out/smoke/validation.txt"
        test -s "$out/smoke/report/report.md"
        echo "submission: $(ls "$out"/smoke/results/*/all_full_preds_and_fast_scores_*.json)"
        echo "report: $out/smoke/report/report.md"
        ;;
    esac
done
phase "done"
