# BabyLM kit image: pinned CUDA runtime + Python 3.11 + torch (pinned on its own) + requirements.lock.
#
#   docker build -t babylm-kit --build-arg BABYLM_COMMIT="$(git rev-parse HEAD)" .
#   docker run --rm --gpus all --ipc=host -v "$PWD/outputs:/outputs" -v babylm-hf:/cache babylm-kit smoke
#
# docker/README.md is the guide; docker/build-image.sh is the daemonless (podman) recipe CI runs,
# which swaps the base for a local Debian bookworm image and torch for the local CPU wheel.

# The base is a build argument so that other bases work (CI passes a debootstrap-made
# Debian bookworm image). Exact tag; to pin it by digest as well, look it up where a registry is
# reachable (`docker buildx imagetools inspect nvidia/cuda:12.8.1-cudnn-runtime-ubuntu24.04`) and
# build with --build-arg BASE_IMAGE=nvidia/cuda:12.8.1-cudnn-runtime-ubuntu24.04@sha256:<digest>.
ARG BASE_IMAGE=nvidia/cuda:12.8.1-cudnn-runtime-ubuntu24.04
FROM ${BASE_IMAGE}
ARG BASE_IMAGE

SHELL ["/bin/bash", "-o", "pipefail", "-c"]

# Python 3.11, the version the lock was compiled for. Debian bookworm ships it as python3; Ubuntu
# 24.04 (the CUDA base) ships 3.12, so there it comes from the deadsnakes PPA. git lets
# code_version() read a mounted checkout; without one, BABYLM_COMMIT (below) names the commit.
# hadolint ignore=DL3008
RUN set -eux; \
    if ! command -v python3.11 >/dev/null; then \
        export DEBIAN_FRONTEND=noninteractive; \
        apt-get update; \
        apt-get install -y --no-install-recommends software-properties-common gpg-agent; \
        add-apt-repository -y ppa:deadsnakes/ppa; \
        apt-get install -y --no-install-recommends python3.11 python3.11-venv ca-certificates git; \
        rm -rf /var/lib/apt/lists/*; \
    fi; \
    python3.11 --version

# A non-root user owns the kit, its environment and the volumes. Ubuntu images ship a user
# "ubuntu" holding uid 1000; it is removed so the kit's user gets the usual first-user uid
# (which makes bind-mounted output folders writable without chown on most hosts).
ARG UID=1000
RUN set -eux; \
    if id ubuntu >/dev/null 2>&1; then userdel --remove ubuntu; fi; \
    groupadd --gid "${UID}" babylm; \
    useradd --create-home --uid "${UID}" --gid "${UID}" --shell /bin/bash babylm; \
    mkdir -p /opt/babylm /outputs /cache /data; \
    chown babylm:babylm /opt/babylm /outputs /cache /data

# DL3064 is a false positive: it flags the "TOKEN" inside TOKENIZERS_PARALLELISM.
# hadolint ignore=DL3064
ENV PYTHONHASHSEED=0 \
    PYTHONUNBUFFERED=1 \
    PYTHONDONTWRITEBYTECODE=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    TOKENIZERS_PARALLELISM=false \
    HF_HOME=/cache/huggingface \
    BABYLM_OUT=/outputs \
    BABYLM_SKIP_INSTALL=1 \
    PATH=/opt/babylm/.venv/bin:/opt/babylm:${PATH}

USER ${UID}:${UID}
WORKDIR /opt/babylm

# Dependency layer, built from the lock alone so that source edits do not invalidate it.
# torch is pinned on its own (the lock leaves it out): by default the CUDA 12.8 build from the
# PyTorch index, with its nvidia-* runtime wheels (TORCH_DEPS=1). CI passes the local CPU wheel
# as a file path (TORCH_SPEC=/wheels/torch-...whl, TORCH_INDEX="", TORCH_DEPS=0) via a bind mount.
# WHEELHOUSE (default empty: the locked packages come from PyPI) names a folder of the locked
# wheels, bind-mounted by CI, to install from with no index at all; pip checks the lock's hashes
# either way. INSTALL_DEV=0 (default): the runtime lock only, no development tools; 1 adds them
# (requirements-dev.lock), for running the tests inside the image.
ARG TORCH_SPEC=torch==2.13.0+cu128
ARG TORCH_INDEX=https://download.pytorch.org/whl/cu128
ARG TORCH_DEPS=1
ARG WHEELHOUSE=
ARG INSTALL_DEV=0
COPY --chown=babylm:babylm requirements.lock requirements-dev.lock pyproject.toml ./
COPY --chown=babylm:babylm docker/install.sh docker/install.sh
RUN PYTHON=python3.11 TORCH_SPEC="${TORCH_SPEC}" TORCH_INDEX="${TORCH_INDEX}" TORCH_DEPS="${TORCH_DEPS}" \
    WHEELHOUSE="${WHEELHOUSE}" INSTALL_DEV="${INSTALL_DEV}" INSTALL_PROJECT=0 bash docker/install.sh

# The source, then the editable install of the kit itself (seconds: the dependencies are in place).
COPY --chown=babylm:babylm . .
RUN PYTHON=python3.11 TORCH_SPEC="${TORCH_SPEC}" INSTALL_DEV="${INSTALL_DEV}" bash docker/install.sh

# .git stays out of the image (.dockerignore); the commit comes in as a build argument, last so
# that a new commit only rebuilds this metadata layer.
ARG BABYLM_COMMIT=unknown
ENV BABYLM_COMMIT=${BABYLM_COMMIT}
LABEL org.opencontainers.image.title="babylm-kit" \
      org.opencontainers.image.revision="${BABYLM_COMMIT}" \
      org.opencontainers.image.base.name="${BASE_IMAGE}"

# Outputs (run folders, submissions, reports), the Hugging Face cache and optional local data.
VOLUME ["/outputs", "/cache", "/data"]

ENTRYPOINT ["/opt/babylm/docker/entrypoint.sh"]
CMD ["reproduce.sh", "smoke"]
