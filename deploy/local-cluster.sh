#!/usr/bin/env bash
# The docker-compose topology as separate OS processes on loopback addresses, for machines without Docker:
#
#   deploy/local-cluster.sh --workers N [--threads-per-worker T] [--tls DIR] [--no-build] -- <cnn train options>
#   e.g. deploy/local-cluster.sh --workers 2 -- --epochs 1 --max-steps 30 --seed 5 --data DIR --out DIR
#   deploy/local-cluster.sh --bench --workers N [...] -- <cnn bench options>
#
# The coordinator (`cnn train --workers N --host 127.0.0.1 --port P --data-port Q <your options>`) listens on
# 127.0.0.1; worker k (Cnn.Worker) binds 127.0.0.(k+1), with the CNN_* variables docker-compose.yml sets:
# CNN_SEED_NODES, CNN_BIND_HOST, CNN_BIND_PORT, CNN_PUBLIC_HOST, CNN_DATA_DIR, CNN_THREADS, CNN_WORKER_ID,
# CNN_LOG_LEVEL (and CNN_TLS_* when TLS is on); a CNN_LOG_LEVEL exported before the script applies to every
# node. P and Q are free ports found at start; workers take any free port. Like the image (deploy/Dockerfile),
# every process runs with the runtime's default settings; DOTNET_* variables
# exported before the script (DOTNET_TieredCompilation=0 for short runs, see deploy/README.md) pass on to all.
#
#   --threads-per-worker T   compute threads of each worker (default: cores / N, at least 1)
#   --pin-threads on|off     on (the default): when every worker thread can have a CPU of its own among those this
#                            shell may use, worker k's threads get the k-th group of them (CNN_CPUS), as `cnn train
#                            --local-workers` pins its workers; off: left to the scheduler
#   --tls DIR                mutual TLS with DIR/coordinator.p12 and DIR/worker.p12 (from deploy/certs.sh);
#                            CNN_TLS_* variables already exported are passed on as they are
#   --no-build               do not build; by default `dotnet build -c Release` runs when a program is missing
#                            or older than its sources
#   --bench                  the coordinator runs `cnn bench --workers N` instead of `cnn train`: the cluster's
#                            throughput against --no-cluster with the workers' threads, in the same process and
#                            run, repeats alternating (see cnn bench --help)
#
# It waits for the coordinator, then stops the workers (SIGTERM, SIGKILL after 10 s) and exits with the
# coordinator's exit code. SIGINT or SIGTERM to the script stops the coordinator first (it finishes its step and
# saves a checkpoint, exit code 130/143, which the script returns), then the workers. The run's
# artifacts land in --out; the coordinator's output and errors go to the script's own (so `--bench -- --json`
# prints only the JSON on standard output) and also, with the workers' logs, to coordinator.log and
# worker-K.log in --out/logs, or in a temp directory
# when --out is not given. Linux routes all of 127.0.0.0/8 to loopback; elsewhere add the addresses first.
set -euo pipefail

repo="$(cd "$(dirname "$0")/.." && pwd)"
workers=""
threads=""
tls_dir=""
build=1
pin=on
command=train
while [[ $# -gt 0 ]]; do
  case "$1" in
    --workers) workers="${2:-}"; shift 2 ;;
    --threads-per-worker) threads="${2:-}"; shift 2 ;;
    --tls) tls_dir="${2:-}"; shift 2 ;;
    --pin-threads) pin="${2:-}"; shift 2 ;;
    --no-build) build=0; shift ;;
    --bench) command=bench; shift ;;
    --) shift; break ;;
    -h|--help) awk 'NR > 1 && /^#/ { sub(/^# ?/, ""); print; next } NR > 1 { exit }' "$0"; exit 0 ;;
    *) echo "local-cluster.sh: unknown option '$1' (options of cnn train go after --; see --help)" >&2; exit 2 ;;
  esac
done
cnn_args=("$@")
[[ "$workers" =~ ^[1-9][0-9]*$ ]] || { echo "local-cluster.sh: --workers N is required (N >= 1)" >&2; exit 2; }
(( workers <= 250 )) || { echo "local-cluster.sh: --workers $workers: at most 250 loopback addresses (127.0.0.2 to 127.0.0.251)" >&2; exit 2; }
if [[ -z "$threads" ]]; then
  threads=$(( $(nproc) / workers )); (( threads >= 1 )) || threads=1
fi
[[ "$threads" =~ ^[1-9][0-9]*$ ]] || { echo "local-cluster.sh: --threads-per-worker $threads is not a positive number" >&2; exit 2; }
[[ "$pin" == on || "$pin" == off ]] || { echo "local-cluster.sh: --pin-threads '$pin' must be on or off" >&2; exit 2; }
for a in "${cnn_args[@]}"; do
  case "$a" in
    --workers|--host|--port|--data-port|--local-workers|--no-cluster|--threads-per-worker)
      echo "local-cluster.sh: '$a' is set by this script; leave it out of the cnn $command options" >&2; exit 2 ;;
  esac
done

# The options the workers must agree with: --data (their CNN_DATA_DIR) and --out (where logs go).
data_dir=""
out_dir=""
for (( i = 0; i < ${#cnn_args[@]}; i++ )); do
  case "${cnn_args[$i]}" in
    --data) data_dir="${cnn_args[$((i + 1))]:-}" ;;
    --data=*) data_dir="${cnn_args[$i]#--data=}" ;;
    --out) out_dir="${cnn_args[$((i + 1))]:-}" ;;
    --out=*) out_dir="${cnn_args[$i]#--out=}" ;;
  esac
done

# The ReadyToRun copies a Release build publishes (Directory.Build.targets): the nodes start without JIT-compiling Akka.
coordinator_dll="$repo/src/Coordinator/bin/Release/net10.0/r2r/Cnn.Coordinator.dll"
worker_dll="$repo/src/Coordinator/bin/Release/net10.0/r2r/Cnn.Worker.dll" # published beside the coordinator, as in the image
stale() { [[ ! -f "$1" ]] || [[ -n "$(find "$repo/src" \( -name '*.cs' -o -name '*.csproj' \) -newer "$1" -print -quit)" ]]; }
if (( build )) && { stale "$coordinator_dll" || stale "$worker_dll"; }; then
  echo "local-cluster.sh: building (dotnet build -c Release)" >&2
  build_log="$(mktemp -t cnn-build.XXXXXX)"
  if ! dotnet build "$repo/src/Coordinator/Cnn.Coordinator.csproj" -c Release -nologo > "$build_log" 2>&1; then
    grep -E ' error |rror\(s\)' "$build_log" | sort -u >&2 || true
    echo "local-cluster.sh: the build failed (full output: $build_log)" >&2
    exit 2
  fi
  rm -f "$build_log"
fi
for dll in "$coordinator_dll" "$worker_dll"; do
  [[ -f "$dll" ]] || { echo "local-cluster.sh: $dll is missing: build with dotnet build -c Release" >&2; exit 2; }
done

tls_coordinator=()
if [[ -n "$tls_dir" ]]; then
  for f in coordinator.p12 worker.p12; do
    [[ -r "$tls_dir/$f" ]] || { echo "local-cluster.sh: --tls $tls_dir: cannot read $tls_dir/$f (make it with deploy/certs.sh --out $tls_dir)" >&2; exit 2; }
  done
  tls_coordinator=(--tls-cert "$tls_dir/coordinator.p12")
fi

if [[ -n "$out_dir" ]]; then log_dir="$out_dir/logs"; else log_dir="$(mktemp -d -t cnn-local-cluster.XXXXXX)"; fi
mkdir -p "$log_dir"

# A port nothing listens on or is connected from on any loopback address; the kernel may still hand it out
# before the coordinator binds it, which then fails with a one-line error.
port_free() {
  if command -v ss >/dev/null; then [[ -z "$(ss -Htan "( sport = :$1 )" 2>/dev/null)" ]]
  else ! (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; fi
}
free_port() {
  local p
  for _ in $(seq 1 200); do
    p=$(( 20000 + RANDOM % 40000 ))
    if [[ "$p" != "${1:-}" ]] && port_free "$p"; then echo "$p"; return 0; fi
  done
  echo "local-cluster.sh: found no free port" >&2; return 1
}
port="$(free_port)"
data_port="$(free_port "$port")"

coordinator_pid=""
worker_pids=()
# SIGTERM to the given processes, SIGKILL to those still running after $1 seconds.
stop_pids() {
  local grace="$1" pid; shift
  for pid in "$@"; do kill -TERM "$pid" 2>/dev/null || true; done
  for _ in $(seq 1 $(( grace * 10 ))); do
    local alive=0
    for pid in "$@"; do kill -0 "$pid" 2>/dev/null && alive=1; done
    (( alive )) || return 0
    sleep 0.1
  done
  for pid in "$@"; do kill -KILL "$pid" 2>/dev/null || true; done
}
# The coordinator first: on SIGTERM it finishes the step in flight, which needs its workers, and saves a
# checkpoint there; then the workers.
stop_all() {
  if [[ -n "$coordinator_pid" ]]; then stop_pids 30 "$coordinator_pid"; fi
  if (( ${#worker_pids[@]} > 0 )); then stop_pids 10 "${worker_pids[@]}"; fi
}
interrupted() {
  echo "local-cluster.sh: interrupted; stopping the coordinator (it saves a checkpoint), then the workers" >&2
  stop_all
  local rc=130
  if [[ -n "$coordinator_pid" ]]; then rc=0; wait "$coordinator_pid" 2>/dev/null || rc=$?; fi
  echo "local-cluster.sh: the coordinator exited with code $rc; logs in $log_dir" >&2
  exit "$rc"
}
trap 'stop_all' EXIT
trap 'interrupted' INT TERM

: > "$log_dir/coordinator.log"
echo "local-cluster.sh: coordinator ($command) on 127.0.0.1:$port (data plane $data_port), $workers workers x $threads threads; logs in $log_dir" >&2
dotnet "$coordinator_dll" "$command" --workers "$workers" --host 127.0.0.1 --port "$port" --data-port "$data_port" \
  "${tls_coordinator[@]}" "${cnn_args[@]}" > >(tee -a "$log_dir/coordinator.log") 2> >(tee -a "$log_dir/coordinator.log" >&2) &
coordinator_pid=$!

# As in docker-compose.yml, where the workers depend on the coordinator being healthy, the workers start once the
# coordinator's remoting listens. A worker that tries to join earlier finds the address unreachable and waits out
# Akka's gate (1 s) and its next join attempt: about 2 s more before the first step. The check reads /proc, as the
# compose file's does, so that no probe connection reaches the coordinator; without /proc the workers start at once.
listening() { grep -qE ":$(printf '%04X' "$port") [0-9A-F]+:[0-9A-F]{4} 0A" /proc/net/tcp /proc/net/tcp6 2>/dev/null; }
if [[ -r /proc/net/tcp ]]; then
  while kill -0 "$coordinator_pid" 2>/dev/null && ! listening; do sleep 0.02; done
fi

# A coordinator that ended before it listened (bad options, unreadable data) needs no workers: its exit code follows.
kill -0 "$coordinator_pid" 2>/dev/null || workers=0
# The CPUs this shell may use, one per line, from its Cpus_allowed_list (such as 0-3,8-11; nothing where there is none).
allowed_cpus() {
  local list range
  list=$(awk '/^Cpus_allowed_list:/ { print $2 }' /proc/self/status 2>/dev/null || true)
  [[ -n "$list" ]] || return 0
  IFS=, read -ra ranges <<< "$list"
  for range in "${ranges[@]}"; do
    if [[ "$range" == *-* ]]; then seq "${range%-*}" "${range#*-}"; else echo "$range"; fi
  done
}
# When every worker thread can have a CPU of its own among those this shell may use, worker k's computing threads
# are pinned to the k-th group of them (CNN_CPUS), as a local cluster in one process pins its workers
# (docs/performance.md, thirty-fifth session). `--pin-threads off` leaves them to the scheduler.
cpus=()
if [[ "$pin" == on ]]; then read -ra cpus <<< "$(allowed_cpus | tr '\n' ' ')"; fi
for (( k = 1; k <= workers; k++ )); do
  address="127.0.0.$(( k + 1 ))"
  pinned=""
  if (( workers * threads <= ${#cpus[@]} )); then
    pinned=$(IFS=,; echo "${cpus[*]:$(( (k - 1) * threads )):$threads}")
  fi
  (
    export CNN_SEED_NODES="127.0.0.1:$port" CNN_BIND_HOST="$address" CNN_BIND_PORT=0 CNN_PUBLIC_HOST="$address" \
      CNN_THREADS="$threads" CNN_WORKER_ID="worker-$k" CNN_LOG_LEVEL="${CNN_LOG_LEVEL:-info}"
    if [[ -n "$pinned" ]]; then export CNN_CPUS="$pinned"; fi
    if [[ -n "$data_dir" ]]; then export CNN_DATA_DIR="$data_dir"; fi
    if [[ -n "$tls_dir" ]]; then export CNN_TLS_CERT="$tls_dir/worker.p12"; unset CNN_TLS_KEY CNN_TLS_CA; fi
    exec dotnet "$worker_dll"
  ) > "$log_dir/worker-$k.log" 2>&1 &
  worker_pids+=("$!")
done

# Report a worker that ends early (bad configuration, refused) once, with the end of its log; the coordinator
# decides whether the run can go on.
reported=()
while kill -0 "$coordinator_pid" 2>/dev/null; do
  for (( k = 1; k <= workers; k++ )); do
    pid="${worker_pids[$((k - 1))]}"
    if [[ -z "${reported[$k]:-}" ]] && ! kill -0 "$pid" 2>/dev/null; then
      reported[$k]=1
      rc=0; wait "$pid" || rc=$?
      echo "local-cluster.sh: worker-$k exited with code $rc; the end of $log_dir/worker-$k.log:" >&2
      tail -n 5 "$log_dir/worker-$k.log" | sed 's/^/    /' >&2
    fi
  done
  sleep 0.5
done
rc=0
wait "$coordinator_pid" || rc=$?
stop_all
echo "local-cluster.sh: the coordinator exited with code $rc; logs in $log_dir" >&2
exit "$rc"
