#!/usr/bin/env bash
# Slurm testing: bash tools/slurm_test.sh PARTITION JOB_NAME CONFIG CHECKPOINT [test.py args...]
# GPUS, GPUS_PER_NODE, CPUS_PER_TASK, SRUN_ARGS: see slurm_launch.sh.
exec bash "$(dirname "$0")/slurm_launch.sh" test.py "$1" "$2" "$3" "$4" "${@:5}"
