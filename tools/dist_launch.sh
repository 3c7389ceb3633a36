#!/usr/bin/env bash
# Shared by dist_train.sh and dist_test.sh: run tools/SCRIPT in NUM_PROCS
# processes per node with torch.distributed (NCCL on GPUs, gloo on CPUs).
#   bash tools/dist_launch.sh SCRIPT NUM_PROCS [script args...]
# NNODES, NODE_RANK, MASTER_ADDR, PORT: multi-node settings (defaults: one node).
# PYTHON: the interpreter (default: python on PATH, e.g. an activated venv).
set -euo pipefail
SCRIPT=$1
NPROC=$2
HERE="$(cd "$(dirname "$0")" && pwd)"

PYTHONPATH="$HERE/..${PYTHONPATH:+:$PYTHONPATH}" \
"${PYTHON:-python}" -m torch.distributed.run \
    --nnodes="${NNODES:-1}" \
    --node_rank="${NODE_RANK:-0}" \
    --master_addr="${MASTER_ADDR:-127.0.0.1}" \
    --nproc_per_node="$NPROC" \
    --master_port="${PORT:-29500}" \
    "$HERE/$SCRIPT" "${@:3}" --launcher pytorch
