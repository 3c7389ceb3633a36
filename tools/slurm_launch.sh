#!/usr/bin/env bash
# Shared by slurm_train.sh and slurm_test.sh: run tools/SCRIPT as a slurm job.
#   bash tools/slurm_launch.sh SCRIPT PARTITION JOB_NAME [script args...]
# GPUS (total, default 8), GPUS_PER_NODE (8), CPUS_PER_TASK (5), SRUN_ARGS;
# PYTHON: the interpreter (default: python on PATH).
set -euo pipefail
SCRIPT=$1
PARTITION=$2
JOB_NAME=$3
GPUS=${GPUS:-8}
GPUS_PER_NODE=${GPUS_PER_NODE:-8}
HERE="$(cd "$(dirname "$0")" && pwd)"

PYTHONPATH="$HERE/..${PYTHONPATH:+:$PYTHONPATH}" \
srun -p "$PARTITION" \
    --job-name="$JOB_NAME" \
    --gres=gpu:"$GPUS_PER_NODE" \
    --ntasks="$GPUS" \
    --ntasks-per-node="$GPUS_PER_NODE" \
    --cpus-per-task="${CPUS_PER_TASK:-5}" \
    --kill-on-bad-exit=1 \
    ${SRUN_ARGS:-} \
    "${PYTHON:-python}" -u "$HERE/$SCRIPT" "${@:4}" --launcher=slurm
