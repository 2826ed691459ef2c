#!/usr/bin/env bash
# Build the Docker image without registry access, then prove it works (docs/containers.md).
#
# For machines that reach Debian's and PyPI's package servers but not Docker Hub, and where pip
# inside a container fails TLS (this project's development VMs, see
# ../shared/design/dependencies.md section 6). As root, it
#   1. installs Debian's docker.io and debootstrap when missing and starts dockerd by hand
#      (no bridge, no iptables), on its own socket;
#   2. makes a Debian 12 base image with debootstrap (kept for the next run);
#   3. makes wheels of the pinned dependencies on the host (the CPU torch wheel here; the default
#      build of the Dockerfile installs the CUDA one);
#   4. builds the image from a copy of the working tree, with those wheels (pip --no-index) and
#      the BraTS-2017 checkpoints from ../shared;
#   5. runs --version, makes a small phantom and runs the participant level on it inside the
#      image, as an arbitrary uid, with a read-only root file system and no network; then, when
#      bosh is installed, the same through `bosh exec launch boutiques.json`;
#   6. prints the image size, stops dockerd and unmounts its network namespace (unless
#      --keep-daemon: then it prints how to reach the daemon and how to stop it).
#
# Usage: containers/build-local.sh [--purge | --keep-daemon]
#   --purge        also delete STATE_DIR (base image, layer cache, wheels) at the end
#   --keep-daemon  leave dockerd running, to `docker run` the image (DOCKER_HOST, printed)
# Environment:
#   STATE_DIR      dockerd's data, the base image and the wheels (default /var/tmp/bids-arca-docker)
#   TAG            image tag (default bids-arca/bids-arca:<version>)
#   BRATS17_DIR    folder with the checkpoints (default $BIDS_ARCA_SHARED/weights/brats17-cacnn)
#   PYTHON         host Python 3.11 used for `pip wheel` (default python3.11)
#   BOSH           Boutiques' bosh; when found (default: on PATH) the descriptor is launched too
set -euo pipefail

REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
SHARED=${BIDS_ARCA_SHARED:-$REPO/../shared}
BRATS17_DIR=${BRATS17_DIR:-$SHARED/weights/brats17-cacnn}
STATE_DIR=${STATE_DIR:-/var/tmp/bids-arca-docker}
PYTHON=${PYTHON:-python3.11}
BOSH=${BOSH-$(command -v bosh || true)}
VERSION=$(sed -n "s/^__version__ = '\(.*\)'$/\1/p" "$REPO/bids_arca/__init__.py")
TAG=${TAG:-bids-arca/bids-arca:$VERSION}
BASE=local/debian:bookworm-minbase
MIRROR=http://deb.debian.org/debian
RUN_UID=4242  # an id unknown to the image, as `docker run -u $(id -u)` gives on a cluster
PURGE=0
KEEP_DAEMON=0

for option in "$@"; do
    case "$option" in
        --purge) PURGE=1 ;;
        --keep-daemon) KEEP_DAEMON=1 ;;
        *) echo "usage: $0 [--purge | --keep-daemon]" >&2; exit 64 ;;
    esac
done
if ((PURGE && KEEP_DAEMON)); then
    echo "$0: --purge deletes what --keep-daemon keeps running; give one of them" >&2
    exit 64
fi
if [[ $EUID -ne 0 ]]; then
    echo "$0: must run as root (it starts dockerd)" >&2
    exit 77
fi
if ! compgen -G "$BRATS17_DIR/*.ckpt.index" >/dev/null; then
    echo "$0: $BRATS17_DIR: no BraTS-2017 checkpoints (set BRATS17_DIR or BIDS_ARCA_SHARED)" >&2
    exit 66
fi

DATA_ROOT=$STATE_DIR/data-root
EXEC_ROOT=$STATE_DIR/exec
SOCKET=$STATE_DIR/docker.sock
WHEELS=$STATE_DIR/wheels
CONTEXT=$STATE_DIR/context
RUN_DIR=$STATE_DIR/run
export DOCKER_HOST=unix://$SOCKET
export DOCKER_BUILDKIT=0  # Debian's engine builds with the classic builder, no buildx plugin
DOCKER=docker
DOCKERD_PID=

step() { printf '\n== [%4ds] %s\n' "$SECONDS" "$*"; }

cleanup() {
    local status=$?
    if [[ $KEEP_DAEMON == 1 && $status == 0 ]]; then
        rm -rf "$CONTEXT" "$RUN_DIR"
        cat <<EOF

dockerd keeps running (pid $DOCKERD_PID) with the image $TAG. Reach it with
    export DOCKER_HOST=unix://$SOCKET
    docker run --rm --network none -u "\$(id -u):\$(id -g)" -v ... $TAG /bids /out participant
(--network none: this daemon has no bridge network). Stop it with
    sudo kill $DOCKERD_PID && sudo umount $EXEC_ROOT/netns/default
EOF
        exit 0
    fi
    if [[ -n $DOCKERD_PID ]] && kill -0 "$DOCKERD_PID" 2>/dev/null; then
        step "stopping dockerd (pid $DOCKERD_PID)"
        kill "$DOCKERD_PID"
        for _ in $(seq 30); do kill -0 "$DOCKERD_PID" 2>/dev/null || break; sleep 1; done
    fi
    # dockerd leaves the bind mount of its default network namespace behind.
    if mountpoint -q "$EXEC_ROOT/netns/default" 2>/dev/null; then
        umount "$EXEC_ROOT/netns/default"
    fi
    rm -rf "$CONTEXT" "$RUN_DIR"
    if [[ $PURGE == 1 ]]; then
        rm -rf "$STATE_DIR"
    fi
    exit "$status"
}
trap cleanup EXIT

step "tools: docker.io, debootstrap"
missing=()
[[ -x /usr/sbin/dockerd ]] || missing+=(docker.io)
command -v debootstrap >/dev/null || missing+=(debootstrap)
if ((${#missing[@]})); then
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}"
fi
# The engine's own client: a newer client elsewhere on PATH may not speak to it.
[[ -x /usr/bin/docker ]] && DOCKER=/usr/bin/docker

step "starting dockerd in $STATE_DIR"
mkdir -p "$DATA_ROOT" "$EXEC_ROOT"
/usr/sbin/dockerd --data-root "$DATA_ROOT" --exec-root "$EXEC_ROOT" \
    --pidfile "$STATE_DIR/dockerd.pid" -H "unix://$SOCKET" \
    --bridge=none --iptables=false --ip6tables=false --ip-masq=false \
    >"$STATE_DIR/dockerd.log" 2>&1 &
DOCKERD_PID=$!
for _ in $(seq 60); do
    "$DOCKER" info >/dev/null 2>&1 && break
    kill -0 "$DOCKERD_PID" 2>/dev/null || { cat "$STATE_DIR/dockerd.log" >&2; exit 1; }
    sleep 1
done
"$DOCKER" version --format 'engine {{.Server.Version}}, client {{.Client.Version}}'

step "base image $BASE"
if ! "$DOCKER" image inspect "$BASE" >/dev/null 2>&1; then
    rootfs=$STATE_DIR/rootfs
    rm -rf "$rootfs"
    debootstrap --variant=minbase bookworm "$rootfs" "$MIRROR" >"$STATE_DIR/debootstrap.log"
    tar -C "$rootfs" -c . | "$DOCKER" import - "$BASE"
    rm -rf "$rootfs"
fi

step "wheels of the pinned dependencies (pyproject.toml) in $WHEELS"
mkdir -p "$WHEELS"
"$PYTHON" - "$REPO/pyproject.toml" >"$STATE_DIR/requirements.txt" <<'EOF'
import sys
import tomllib

with open(sys.argv[1], 'rb') as stream:
    project = tomllib.load(stream)
print('\n'.join(project['project']['dependencies'] + project['build-system']['requires']))
EOF
# `pip wheel` rather than `pip download`: packages published only as source (docopt, for
# heudiconv) are built here, so that the image needs neither a compiler nor setuptools. The
# wheels of an earlier run are reused when they still satisfy the pins.
if ! "$PYTHON" -m pip wheel --no-index --find-links "$WHEELS" --wheel-dir "$WHEELS" \
        -r "$STATE_DIR/requirements.txt" >"$STATE_DIR/pip-wheel.log" 2>&1 \
    && ! "$PYTHON" -m pip wheel --wheel-dir "$WHEELS" -r "$STATE_DIR/requirements.txt" \
        >"$STATE_DIR/pip-wheel.log" 2>&1; then
    tail -20 "$STATE_DIR/pip-wheel.log" >&2
    exit 1
fi
echo "$(ls "$WHEELS" | wc -l) wheels, $(du -sh "$WHEELS" | cut -f1)"

step "build context: working tree, wheels, BraTS-2017 checkpoints"
rm -rf "$CONTEXT"
mkdir -p "$CONTEXT"
git -C "$REPO" ls-files -z --cached --others --exclude-standard \
    | tar -C "$REPO" --null --files-from=- --ignore-failed-read -c | tar -C "$CONTEXT" -x
cp -l "$WHEELS"/*.whl "$CONTEXT/containers/wheels/" 2>/dev/null \
    || cp "$WHEELS"/*.whl "$CONTEXT/containers/wheels/"
cp "$BRATS17_DIR"/*.ckpt.* "$CONTEXT/containers/weights/"
[[ -f $BRATS17_DIR/LICENSE.txt ]] && cp "$BRATS17_DIR/LICENSE.txt" "$CONTEXT/containers/weights/"

step "docker build -t $TAG"
build_start=$SECONDS
"$DOCKER" build --network host \
    --build-arg BASE_IMAGE="$BASE" \
    --build-arg PIP_OPTIONS=--no-index \
    --build-arg VERSION="$VERSION" \
    --build-arg VCS_REF="$(git -C "$REPO" rev-parse --short HEAD)" \
    --build-arg BUILD_DATE="$(date -u +%Y-%m-%dT%H:%M:%SZ)" \
    -t "$TAG" "$CONTEXT"
build_seconds=$((SECONDS - build_start))

step "inside the image: --version"
"$DOCKER" run --rm --network none "$TAG" --version

step "inside the image: a small phantom, then the participant level, as uid $RUN_UID"
rm -rf "$RUN_DIR"
mkdir -p "$RUN_DIR/out"
chown -R "$RUN_UID:$RUN_UID" "$RUN_DIR"
run=("$DOCKER" run --rm --network none --read-only --tmpfs /tmp -u "$RUN_UID:$RUN_UID")
"${run[@]}" -v "$RUN_DIR:/data" --entrypoint bids-arca-sample "$TAG" \
    make /data/sample --small --subjects 1 --sessions preop --format bids
participant_start=$SECONDS
"${run[@]}" -v "$RUN_DIR/sample/rawdata:/bids:ro" -v "$RUN_DIR/out:/out" "$TAG" \
    /bids /out participant --nprocs 2
participant_seconds=$((SECONDS - participant_start))
find "$RUN_DIR/out" -type f | sed "s|$RUN_DIR/out/|  out/|" | sort
foreign=$(find "$RUN_DIR/out" ! -uid "$RUN_UID" | wc -l)
if ((foreign)); then
    echo "$foreign output file(s) not owned by uid $RUN_UID" >&2
    exit 1
fi
grep -q '"Type": "docker"' "$RUN_DIR/out/dataset_description.json"

if [[ -n $BOSH ]]; then
    step "through Boutiques: bosh exec launch boutiques.json"
    mkdir -p "$RUN_DIR/bosh"
    cp -r "$RUN_DIR/sample/rawdata" "$RUN_DIR/bosh/rawdata"
    printf '{"bids_dir": "rawdata", "output_dir_name": "out", "analysis_level": "participant"}' \
        >"$RUN_DIR/bosh/invocation.json"
    # bosh calls `docker`: the engine's own client first on PATH.
    (cd "$RUN_DIR/bosh" && PATH=/usr/bin:$PATH "$BOSH" exec launch --user --no-pull \
        --skip-data-collection "$REPO/boutiques.json" invocation.json)
    test -f "$RUN_DIR/bosh/out/dataset_description.json"
fi

step "result"
size=$("$DOCKER" image inspect --format '{{.Size}}' "$TAG")
"$DOCKER" history --format '{{.Size}}\t{{.CreatedBy}}' "$TAG" | cut -c1-110 | head -20
echo "image $TAG: $((size / 1000000)) MB; build ${build_seconds} s;" \
    "participant run ${participant_seconds} s; total ${SECONDS} s"
