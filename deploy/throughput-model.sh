#!/usr/bin/env bash
# Prints deploy/README.md's table of modelled cluster throughput from a measured compute rate:
#
#   deploy/throughput-model.sh --images-per-second R [--batch B] [--tensor-bytes S] [--workers "2 4 8 16"]
#
# R is the training rate of ONE thread (`cnn bench --threads 1`, line "training"), so one image costs 1/R s.
# Per step every worker receives the weights (S bytes) and sends one gradient sum (S bytes, one subtree per
# worker); all of it passes the parameter server's link, N copies each way. Without overlap of compute and
# transfer, and with one single-thread worker per machine:
#
#   step(N)   = B / (N * R)  +  2 * N * S / L        L = 94% of the line rate in bytes/s (TCP/IP + Ethernet framing)
#   images/s  = B / step(N)
#
# Ignored: latency and the parameter server's reduction and Adam (well under a millisecond for 93,322
# parameters), stragglers, and the overlap of one worker's transfer with another's compute, which would help.
set -euo pipefail
rate="" batch=64 bytes=373288 workers="2 4 8 16"
while [[ $# -gt 0 ]]; do
  case "$1" in
    --images-per-second) rate="$2"; shift 2 ;;
    --batch) batch="$2"; shift 2 ;;
    --tensor-bytes) bytes="$2"; shift 2 ;;
    --workers) workers="$2"; shift 2 ;;
    *) echo "throughput-model.sh: unknown option $1" >&2; exit 2 ;;
  esac
done
[[ -n "$rate" ]] || { echo "throughput-model.sh: give --images-per-second (from cnn bench --threads 1)" >&2; exit 2; }
awk -v rate="$rate" -v batch="$batch" -v bytes="$bytes" -v workers="$workers" 'BEGIN {
  n = split(workers, w, " ")
  gbe1 = 0.94 * 1e9 / 8; gbe10 = 0.94 * 10e9 / 8
  printf "| workers | compute per step | bytes per step per worker | bytes per step at the parameter server | 1 GbE: transfer per step | 1 GbE: images/s | 10 GbE: transfer per step | 10 GbE: images/s |\n"
  printf "|---:|---:|---:|---:|---:|---:|---:|---:|\n"
  for (i = 1; i <= n; i++) {
    N = w[i]
    compute = batch / (N * rate) * 1000
    t1 = 2 * N * bytes / gbe1 * 1000; t10 = 2 * N * bytes / gbe10 * 1000
    printf "| %d | %.2f ms | %s | %s | %.2f ms | %s | %.2f ms | %s |\n", N, compute, commas(2 * bytes), commas(2 * N * bytes),
      t1, commas(int(batch / (compute + t1) * 1000 + 0.5)), t10, commas(int(batch / (compute + t10) * 1000 + 0.5))
  }
}
function commas(x,   s) { s = sprintf("%d", x); while (s ~ /[0-9][0-9][0-9][0-9]/) sub(/[0-9][0-9][0-9]([,]|$)/, ",&", s); return s }'
