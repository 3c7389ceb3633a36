#!/usr/bin/env bash
# Create (or reuse) a virtual environment with everything mmsnnmlp needs:
# torch 2.14.1 + torchvision 0.29.1, mmcv 2.1.0 with compiled ops, mmengine,
# mmdet, mmseg (+ ftfy, regex), timm, pycocotools, pytest and mmsnnmlp itself
# (editable). Idempotent: a second run checks the imports and returns.
#
#   bash tools/install.sh           the full stack, in <repo>/.venv
#   bash tools/install.sh --oldest  the oldest supported core stack (torch 2.1.2,
#                                   numpy<2, mmengine; no mmcv/mmdet/mmseg/timm),
#                                   in <repo>/.venv-torch2.1, for the core tests
#   bash tools/install.sh --mim-link  only link site-packages/mmsnnmlp to the source
#                                   of an existing editable install (see below), e.g.
#                                   after your own `pip install -e .`
#
# Environment:
#   MMSNNMLP_VENV    where the full venv lives       (default: <repo>/.venv)
#   MMSNNMLP_OLDEST_VENV  the --oldest venv          (default: <repo>/.venv-torch2.1)
#   MMCV_WHEELHOUSE  folder holding an mmcv 2.1.0 wheel built for this torch
#                    (default: <repo>/../shared/wheels if present). Without
#                    one, mmcv is built from PyPI's source (~15 min on 2 cores)
#                    and the wheel is kept in ~/.cache/mmsnnmlp/wheels.
#   PYTHON           interpreter for a new venv      (default: python3.11, else python3)
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
log() { echo "[install] $*"; }

# mim (and mmengine's Config) find a package at <dist location>/<package>;
# for an editable (PEP 660) install that is site-packages, which holds only
# the dist-info. A symlink site-packages/mmsnnmlp -> <source>/mmsnnmlp makes
# `mim train/test/run/search mmsnnmlp` and `mim list` work, and imports
# still load the source files. It is listed in RECORD so that
# `pip uninstall mmsnnmlp` removes it. Nothing happens for regular installs.
mim_link() {
    # -I and an explicit path: not the mmsnnmlp.egg-info of a source tree in cwd
    "$1" -I - <<'PYEOF'
import json, os, os.path as osp, sysconfig
from importlib.metadata import distributions
from urllib.parse import unquote, urlparse
site = sysconfig.get_paths()['purelib']
dist = next(iter(distributions(name='mmsnnmlp', path=[site])), None)
direct = json.loads((dist and dist.read_text('direct_url.json')) or '{}')
if not direct.get('dir_info', {}).get('editable'):
    raise SystemExit(0)
source = osp.join(unquote(urlparse(direct['url']).path), 'mmsnnmlp')
link = osp.join(site, 'mmsnnmlp')
if osp.lexists(link) and not osp.islink(link):
    raise SystemExit(f'{link} exists and is not a symlink: not replacing it')
if osp.islink(link):
    os.remove(link)
os.symlink(source, link)
record = next(str(dist.locate_file(f)) for f in dist.files if f.name == 'RECORD')
with open(record) as f:
    lines = f.read().splitlines()
if 'mmsnnmlp,,' not in lines:
    with open(record, 'a') as f:
        f.write('mmsnnmlp,,\n')
print(f'[install] {link} -> {source}')
PYEOF
}

if [ "${1:-}" = "--mim-link" ]; then
    mim_link "${MMSNNMLP_VENV:-$ROOT/.venv}/bin/python"
    exit 0
fi

if [ "${1:-}" = "--oldest" ]; then
    VENV="${MMSNNMLP_OLDEST_VENV:-$ROOT/.venv-torch2.1}"
    STAMP="$VENV/.mmsnnmlp-install"
    WANT="$(cat "$ROOT/tools/install.sh" "$ROOT/setup.py" | sha256sum | cut -c1-16)"
    core_ok() {
        "$VENV/bin/python" -c "import torch, mmengine, pytest, hypothesis, mmsnnmlp
assert torch.__version__.startswith('2.1.2'), torch.__version__" 2>/dev/null
    }
    if [ -f "$STAMP" ] && [ "$(cat "$STAMP")" = "$WANT" ] && core_ok; then
        log "environment $VENV is up to date"
        exit 0
    fi
    [ -x "$VENV/bin/python" ] || "${PYTHON:-$(command -v python3.11 || command -v python3)}" -m venv "$VENV"
    log "installing the oldest supported core stack into $VENV"
    "$VENV/bin/python" -m pip --disable-pip-version-check install -q "torch==2.1.2" "numpy<2" \
        "mmengine==0.10.7" "setuptools==80.9.0" wheel pytest hypothesis
    "$VENV/bin/python" -m pip --disable-pip-version-check install -q --no-deps \
        --no-build-isolation -e "$ROOT"
    mim_link "$VENV/bin/python"
    core_ok || { log "imports fail in $VENV"; "$VENV/bin/python" -c "import torch, mmsnnmlp"; exit 1; }
    echo "$WANT" > "$STAMP"
    log "done: $VENV"
    exit 0
fi

VENV="${MMSNNMLP_VENV:-$ROOT/.venv}"
TORCH_PINS="torch==2.14.1 torchvision==0.29.1"
MMCV_VERSION=2.1.0
MMCV_CACHE="${HOME}/.cache/mmsnnmlp/wheels"
if [ -z "${MMCV_WHEELHOUSE:-}" ] && [ -d "$ROOT/../shared/wheels" ]; then
    MMCV_WHEELHOUSE="$(cd "$ROOT/../shared/wheels" && pwd)"
fi
STAMP="$VENV/.mmsnnmlp-install"
# The stamp records what was installed; change any input and we reinstall.
WANT="$(cat "$ROOT/tools/install.sh" "$ROOT/requirements/"*.txt "$ROOT/setup.py" | sha256sum | cut -c1-16)"

if [ ! -x "$VENV/bin/python" ]; then
    PY="${PYTHON:-$(command -v python3.11 || command -v python3)}"
    log "creating venv $VENV with $PY"
    "$PY" -m venv "$VENV"
fi
PIP=("$VENV/bin/python" -m pip --disable-pip-version-check)

imports_ok() {
    "$VENV/bin/python" - <<'EOF' 2>/dev/null
import torch, torchvision, mmengine, mmcv, mmcv.ops, mmdet, mmseg, timm, pycocotools, pytest
import cv2, psutil, mim, xdist, mmsnnmlp
import os.path as osp, sysconfig
assert torch.__version__.startswith('2.14.1'), torch.__version__
assert mmcv.__version__ == '2.1.0', mmcv.__version__
assert cv2.__version__.startswith('4.'), cv2.__version__
# the mim link (editable) or the package itself (regular install)
assert osp.isdir(osp.join(sysconfig.get_paths()['purelib'], 'mmsnnmlp', '.mim', 'configs'))
EOF
}

if [ -f "$STAMP" ] && [ "$(cat "$STAMP")" = "$WANT" ] && imports_ok; then
    log "environment $VENV is up to date"
    exit 0
fi

log "installing torch ($TORCH_PINS)"
"${PIP[@]}" install -q $TORCH_PINS
# mmcv 2.1's setup.py imports pkg_resources, which setuptools >= 81 dropped.
"${PIP[@]}" install -q "setuptools==80.9.0" wheel ninja numpy

if ! "$VENV/bin/python" -c "import mmcv, mmcv.ops; assert mmcv.__version__ == '$MMCV_VERSION'" 2>/dev/null; then
    FIND_LINKS=()
    for d in "${MMCV_WHEELHOUSE:-}" "$MMCV_CACHE"; do
        if [ -n "$d" ] && ls "$d"/mmcv-$MMCV_VERSION-*.whl >/dev/null 2>&1; then
            FIND_LINKS+=(--find-links "$d")
        fi
    done
    if [ ${#FIND_LINKS[@]} -eq 0 ]; then
        log "no mmcv $MMCV_VERSION wheel found: building it from source (takes a while)"
        SRC="$(mktemp -d)"
        "${PIP[@]}" download -q --no-deps --no-binary :all: --no-build-isolation \
            "mmcv==$MMCV_VERSION" -d "$SRC"
        tar -xzf "$SRC"/mmcv-$MMCV_VERSION.tar.gz -C "$SRC"
        # torch >= 2.10 headers need C++20; mmcv 2.1 asks for C++17.
        sed -i "s/\['-std=c++17'\]/['-std=c++20']/" "$SRC/mmcv-$MMCV_VERSION/setup.py"
        mkdir -p "$MMCV_CACHE"
        (cd "$SRC/mmcv-$MMCV_VERSION" && MMCV_WITH_OPS=1 MAX_JOBS="$(nproc)" \
            "${PIP[@]}" wheel -q --no-deps --no-build-isolation -w "$MMCV_CACHE" .)
        rm -rf "$SRC"
        FIND_LINKS=(--find-links "$MMCV_CACHE")
    fi
    log "installing mmcv $MMCV_VERSION from ${FIND_LINKS[*]}"
    "${PIP[@]}" install -q --no-index "${FIND_LINKS[@]}" --no-deps "mmcv==$MMCV_VERSION"
fi

log "installing mmengine, mmdet, mmseg and test tools"
# mmcv's own requirements (addict, yapf, opencv, ...) come with mmengine/mmdet
# here; runtime.txt pins opencv.
"${PIP[@]}" install -q -r "$ROOT/requirements/runtime.txt" \
    -r "$ROOT/requirements/tests.txt" addict packaging pyyaml yapf
"${PIP[@]}" install -q -r "$ROOT/requirements/deploy.txt"  # onnx, onnxruntime, openvino: tests/deployment
# openmim without its dependency opendatalab (only `mim download --dataset`
# runs it), whose openxlab pins setuptools 60, requests 2.28, rich 13.4, ...;
# runtime.txt lists what mim imports. setuptools is pinned again in case.
"${PIP[@]}" install -q --no-deps "openmim==0.3.9"
"${PIP[@]}" install -q "setuptools==80.9.0"
"${PIP[@]}" install -q --no-deps --no-build-isolation -e "$ROOT"
mim_link "$VENV/bin/python"

imports_ok || { log "imports still fail after install:"; "$VENV/bin/python" -c "import mmcv.ops, mmdet, mmseg, mmsnnmlp"; exit 1; }
echo "$WANT" > "$STAMP"
log "done: $VENV"
