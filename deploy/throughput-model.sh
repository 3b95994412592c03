#!/usr/bin/env bash
# Prints deploy/README.md's table of modelled cluster throughput from a measured compute rate:
#
#   deploy/throughput-model.sh --images-per-second R [--batch B] [--micro-batch M] [--tensor-bytes S]
#                              [--tail-bytes T] [--tail-lead F] [--workers "2 4 8 16"]
#
# R is the training rate of ONE thread (`cnn bench --threads 1`, line "training"), so one image costs 1/R s.
# Per step every worker receives the weights (S bytes) and sends one gradient sum (S bytes, one subtree per
# worker); all of it passes the parameter server's link, N copies each way, at L = 94% of the line rate in
# bytes/s (TCP/IP and Ethernet framing), both directions at once (full duplex). One single-thread worker per
# machine, so compute per step is B / (N * R).
#
# Both tensors travel in the model's exchange segments: a tail of T bytes (seed-cnn: conv2d_2 onwards,
# 298,024 bytes) that each worker sends F leaves' compute time before its computation ends (measured: 0.64
# of a leaf, 1.33 ms before the end of an 8.35 ms computation of 4 leaves), and the head (S - T bytes) at the
# end. The parameter server sends the weights' tail once every gradient tail is in, and the head once every
# gradient head is in. From the end of the computation (time 0), on the parameter server's link:
#
#   gradient tails in     a = -F * M / R  +  N * T / L
#   weight tails out      b = a + N * T / L
#   gradient heads in     c = max(0, a) + N * (S - T) / L
#   weight heads out      d = max(b, c) + N * (S - T) / L
#   step(N) = B / (N * R) + d,        images/s = B / step(N)
#
# The cell in brackets is the transfer without that overlap, 2 * N * S / L (whole tensors after the
# computation). With more workers than leaves (N > B / M) each worker gets one leaf of B / N images, which
# `cnn train --micro-batch` must then be given; the model uses that leaf. Ignored: latency, the parameter
# server's reduction and Adam (about 0.2 ms for 93,322 parameters), and stragglers.
set -euo pipefail
rate="" batch=64 micro=8 bytes=373288 tail=298024 lead=0.64 workers="2 4 8 16"
fail() { echo "throughput-model.sh: $*" >&2; exit 2; }
while [[ $# -gt 0 ]]; do
  [[ $# -ge 2 ]] || fail "$1 needs a value"
  case "$1" in
    --images-per-second) rate="$2" ;;
    --batch) batch="$2" ;;
    --micro-batch) micro="$2" ;;
    --tensor-bytes) bytes="$2" ;;
    --tail-bytes) tail="$2" ;;
    --tail-lead) lead="$2" ;;
    --workers) workers="$2" ;;
    *) fail "unknown option $1" ;;
  esac
  shift 2
done
[[ -n "$rate" ]] || fail "give --images-per-second (from cnn bench --threads 1)"
[[ "$rate" =~ ^[0-9]+([.][0-9]+)?$ ]] && awk -v r="$rate" 'BEGIN { exit !(r > 0) }' || fail "--images-per-second must be a positive number, got '$rate'"
[[ "$lead" =~ ^[0-9]+([.][0-9]+)?$ ]] || fail "--tail-lead must be a number of leaves, 0 or more, got '$lead'"
for option in "batch=$batch" "micro-batch=$micro" "tensor-bytes=$bytes" "tail-bytes=$tail"; do
  [[ "${option#*=}" =~ ^[0-9]+$ ]] || fail "--${option%%=*} must be a whole number, got '${option#*=}'"
done
(( batch > 0 && micro > 0 && bytes > 0 )) || fail "--batch, --micro-batch and --tensor-bytes must be above 0"
(( batch % micro == 0 )) || fail "--batch $batch is not a multiple of --micro-batch $micro"
(( tail < bytes )) || fail "--tail-bytes $tail must be below --tensor-bytes $bytes (the head is never empty)"
for n in $workers; do
  [[ "$n" =~ ^[1-9][0-9]*$ ]] || fail "--workers must list whole numbers above 0, got '$n'"
  (( n <= batch )) || fail "$n workers cannot share a batch of $batch images"
done
awk -v rate="$rate" -v batch="$batch" -v micro="$micro" -v bytes="$bytes" -v tail="$tail" -v lead="$lead" -v workers="$workers" 'BEGIN {
  n = split(workers, w, " ")
  gbe1 = 0.94 * 1e9 / 8; gbe10 = 0.94 * 10e9 / 8
  printf "| workers | compute per step | bytes per step per worker | bytes per step at the parameter server | 1 GbE: transfer per step (without overlap) | 1 GbE: images/s (without) | 10 GbE: transfer per step (without overlap) | 10 GbE: images/s (without) |\n"
  printf "|---:|---:|---:|---:|---:|---:|---:|---:|\n"
  for (i = 1; i <= n; i++) {
    N = w[i]
    leaf = (N * micro > batch) ? batch / N : micro
    compute = batch / (N * rate) * 1000
    printf "| %d | %.2f ms | %s | %s | %s | %s |\n", N, compute, commas(2 * bytes), commas(2 * N * bytes),
      cells(N, compute, leaf, gbe1), cells(N, compute, leaf, gbe10)
  }
}
function exposed(N, leaf, L,   a, b, c) {
  a = -lead * leaf / rate + N * tail / L
  b = a + N * tail / L
  c = (a > 0 ? a : 0) + N * (bytes - tail) / L
  return ((b > c ? b : c) + N * (bytes - tail) / L) * 1000
}
function cells(N, compute, leaf, L,   t, whole) {
  t = exposed(N, leaf, L); whole = 2 * N * bytes / L * 1000
  return sprintf("%.2f ms (%.2f) | %s (%s)", t, whole, commas(int(batch / (compute + t) * 1000 + 0.5)), commas(int(batch / (compute + whole) * 1000 + 0.5)))
}
function commas(x,   s) { s = sprintf("%d", x); while (s ~ /[0-9][0-9][0-9][0-9]/) sub(/[0-9][0-9][0-9]([,]|$)/, ",&", s); return s }'
