# bids-arca as a BIDS App image (docs/containers.md).
#
#   docker build -t bids-arca/bids-arca:0.1.0 .
#   mkdir -p /data/out    # yours; a folder Docker creates for -v belongs to root
#   docker run --rm --gpus all -u "$(id -u):$(id -g)" -v /data/bids:/bids:ro -v /data/out:/out \
#       bids-arca/bids-arca:0.1.0 /bids /out participant
#
# The default build needs the network at build time only: Python wheels from PyPI and the
# BraTS-2017 weights from Wang et al.'s repository. Nothing is downloaded when the image runs.
# containers/build-local.sh builds it offline from a local base image and a folder of wheels.

# torch 2.13.0 from PyPI is built for CUDA 13.0 (cuDNN 9.20): this runtime base matches it and
# brings the NVIDIA container hooks. Any apt-based image with a `python3.11` package will do
# (Ubuntu 22.04, Debian 12); the CPU-only local build uses a debootstrapped Debian 12.
ARG BASE_IMAGE=nvidia/cuda:13.0.2-runtime-ubuntu22.04

FROM ${BASE_IMAGE} AS python
ARG DEBIAN_FRONTEND=noninteractive
RUN apt-get update \
    && apt-get install -y --no-install-recommends python3.11 \
    && apt-get clean && rm -rf /var/lib/apt/lists/*


FROM python AS build
ARG DEBIAN_FRONTEND=noninteractive
RUN apt-get update \
    && apt-get install -y --no-install-recommends python3.11-venv \
    && apt-get clean && rm -rf /var/lib/apt/lists/*
# Extra pip options: empty installs from PyPI; `--no-index` installs only from the wheels copied
# from containers/wheels/ (offline builds).
ARG PIP_OPTIONS=""
ENV PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PIP_FIND_LINKS=/wheels
COPY containers/wheels/ /wheels/
RUN python3.11 -m venv /opt/venv
# Same pins as CI (pyproject.toml); the dependencies get their own layer so that a code change
# does not reinstall them.
COPY pyproject.toml /src/
RUN python3.11 -c "import tomllib; print('\n'.join(tomllib.load(open('/src/pyproject.toml', 'rb'))['project']['dependencies']))" \
        > /tmp/requirements.txt \
    && /opt/venv/bin/pip install ${PIP_OPTIONS} -r /tmp/requirements.txt
COPY README.md LICENSE /src/
COPY heuristics /src/heuristics
# the default model, arca-postop (BraTS-2017 cascade + RNet, shipped with bids-arca), is package data
COPY models /src/models
COPY bids_arca /src/bids_arca
RUN /opt/venv/bin/pip install ${PIP_OPTIONS} --no-deps /src

# BraTS-2017 CA-CNN weights (Wang et al. 2017, BSD-3-Clause), converted into the model store, for
# `--model brats17-cacnn`, the cascade alone (the default arca-postop carries the same weights).
# BRATS17_WEIGHTS is a folder of the build context: when it holds the checkpoints they are used,
# otherwise they are fetched from the repository at BRATS17_COMMIT. Either way their SHA-256
# must match containers/brats17-model17.sha256.
ARG BRATS17_COMMIT=d44297e37f4cccaf691217554980b65c2bc87990
ARG BRATS17_WEIGHTS=containers/weights
ENV BIDS_ARCA_MODELS=/opt/bids-arca/models
COPY containers/fetch_brats17.py containers/brats17-model17.sha256 /tmp/brats17/
COPY ${BRATS17_WEIGHTS}/ /tmp/brats17/model17/
RUN /opt/venv/bin/python /tmp/brats17/fetch_brats17.py --commit "${BRATS17_COMMIT}" \
        /tmp/brats17/model17 \
    && /opt/venv/bin/bids-arca-models import-brats17 /tmp/brats17/model17


FROM python
ARG BASE_IMAGE
ARG VERSION=0.1.0
ARG VCS_REF=unknown
ARG BUILD_DATE=unknown
ARG IMAGE_TAG=bids-arca/bids-arca:${VERSION}
LABEL org.opencontainers.image.title="bids-arca" \
      org.opencontainers.image.description="BIDS App: pre- and post-operative glioma segmentation (AR-CA cascade) of clinical brain MRI" \
      org.opencontainers.image.version="${VERSION}" \
      org.opencontainers.image.revision="${VCS_REF}" \
      org.opencontainers.image.created="${BUILD_DATE}" \
      org.opencontainers.image.source="https://github.com/bids-arca/bids-arca" \
      org.opencontainers.image.url="https://github.com/bids-arca/bids-arca" \
      org.opencontainers.image.documentation="https://github.com/bids-arca/bids-arca/blob/main/docs/containers.md" \
      org.opencontainers.image.licenses="Apache-2.0 AND BSD-3-Clause" \
      org.opencontainers.image.base.name="${BASE_IMAGE}"

# Runs as an unprivileged user by default; `-u $(id -u):$(id -g)` makes outputs belong to the
# caller, so HOME (matplotlib, nipype and torch caches) is writable by any uid, as in fMRIPrep.
RUN useradd --create-home --shell /bin/bash bidsarca && chmod -R go=u /home/bidsarca
COPY --from=build /opt/venv /opt/venv
COPY --from=build /opt/bids-arca /opt/bids-arca

# One thread per process unless the app is told otherwise: --nprocs runs sessions in parallel and
# --omp-nthreads sets each one's threads, so that the libraries never oversubscribe the CPUs.
ENV PATH=/opt/venv/bin:${PATH} \
    HOME=/home/bidsarca \
    BIDS_ARCA_MODELS=/opt/bids-arca/models \
    OMP_NUM_THREADS=1 \
    MKL_NUM_THREADS=1 \
    OPENBLAS_NUM_THREADS=1 \
    NVIDIA_VISIBLE_DEVICES=all \
    NVIDIA_DRIVER_CAPABILITIES=compute,utility \
    BIDS_ARCA_CONTAINER_TYPE=docker \
    BIDS_ARCA_CONTAINER_TAG=${IMAGE_TAG}

# Fail the build, not the first run, when a compiled dependency cannot load. The check runs as
# root and leaves caches in HOME (matplotlib's font list, in .config/matplotlib and .cache): they
# are made writable by any uid again, or every run would warn that the folder is not writable.
RUN python -c "import ants, bids, nipype, SimpleITK, torch, bids_arca, matplotlib.font_manager" \
    && bids-arca --version \
    && chmod -R go=u /home/bidsarca

WORKDIR /tmp
USER bidsarca
ENTRYPOINT ["bids-arca"]
