#!/usr/bin/env bash
# Distributed training (GPUs, or CPU processes over gloo):
#   bash tools/dist_train.sh CONFIG NUM_PROCS [train.py args...]
# Multi-node: set NNODES, NODE_RANK, MASTER_ADDR (and PORT) on every node.
exec bash "$(dirname "$0")/dist_launch.sh" train.py "$2" "$1" "${@:3}"
