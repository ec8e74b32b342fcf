#!/usr/bin/env bash
# idle.sh — one node daemon alone: idle CPU, wake-ups and memory (issue 14).
#
# The deployment being measured is one daemon per host: the daemon runs from
# its own copy of the binary, so no other process shares its file-backed
# pages and its PSS is what the host pays. It runs as deployed: TLS, policy
# and audit on, a facts file, the package and service agents as this machine
# allows, a revocation list watched as the packaged server.conf has it. A
# broker (from another copy of the binary) and a client are
# started only to check that the daemon answers and to exercise it.
#
# Prints a markdown block for docs/benchmarks.md: CPU model, date, load
# average (other work on the machine inflates wake-up costs), idle CPU in ms
# per second from /proc/PID/task/*/schedstat (nanoseconds), wake-ups per
# second (schedstat timeslices), and memory from smaps_rollup (RSS, PSS,
# anon, file) with fincore's count of the binary's pages in the page cache:
# once the daemon has settled, after the idle window, after each request
# count of REQUESTS, and once the daemon has released what the requests
# brought in (15-30 s after the last one). The daemon's copy of the binary
# is dropped from the page cache before it starts, as on a host after boot.
#
# Environment: IDLE_S (default 30, seconds of the idle window), REQUESTS
# (default "100 1000": increasing multiples of 4, sent by 4 clients at once,
# half pings, half inventory; "" for none), MCO=path skips the build (the
# default builds as packaging/ does), KEEP_WORK=1 keeps the work directory.
set -euo pipefail

IDLE_S=${IDLE_S:-30}
REQUESTS=${REQUESTS-100 1000}
[[ $IDLE_S =~ ^[0-9]+$ && $IDLE_S -ge 1 ]] || { echo "IDLE_S must be a positive integer" >&2; exit 2; }
prev=0
for n in $REQUESTS; do
	[[ $n =~ ^[0-9]+$ && $n -gt $prev && $((n % 4)) -eq 0 ]] || { echo "REQUESTS must be increasing multiples of 4 (got '$REQUESTS')" >&2; exit 2; }
	prev=$n
done
# shellcheck source=bench/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
bench_init idle.sh
daemon_pid=

if [[ -n ${MCO:-} ]]; then
	cp "$MCO" "$work/mco"
else
	log "building mco as packaged (CGO_ENABLED=0, -trimpath, -s -w)"
	(cd "$repo" && CGO_ENABLED=0 go build -trimpath -ldflags="-s -w" -o "$work/mco" ./cmd/mco)
fi
cd "$work"
# Separate copies: the broker and client must not share the daemon's pages.
cp mco mco-daemon
# As on a host where the package was installed long ago: the daemon's binary
# is on disk, not in the page cache until the daemon reads it.
python3 -c 'import os, sys; fd = os.open(sys.argv[1], os.O_RDONLY); os.fsync(fd); os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_DONTNEED)' mco-daemon
mco=$work/mco

bench_pki
"$mco" pki issue node node1.bench --dir pki >/dev/null
bench_broker
bench_policy
printf 'role: web\nrack: r1\n' >facts.yaml
cat >server.conf <<EOF
broker = tls://127.0.0.1:$port
tls.ca = $work/pki/ca.crt
tls.cert = $work/pki/certs/node1.bench.crt
tls.key = $work/pki/private/node1.bench.key
facts = $work/facts.yaml
policy.dir = $work/policy
audit.log = $work/audit.log
# As packaged: a revocation list (absent until the first revocation).
security.revocation_file = $work/revoked.txt
EOF
bench_client_conf
echo node1.bench >nodes.txt
./mco-daemon server run -c server.conf --log-level warn </dev/null >daemon.log 2>&1 &
daemon_pid=$!
pids+=("$daemon_pid")

ping_once() { "$mco" -c client.conf rpc rpcutil ping --nodes nodes.txt --timeout 1s --json </dev/null 2>/dev/null | grep -c '"sender"' || true; }
for _ in $(seq 60); do
	[[ $(ping_once) == 1 ]] && break
	kill -0 "$daemon_pid" 2>/dev/null || { cat daemon.log >&2; echo "daemon exited" >&2; exit 1; }
	sleep 0.5
done
[[ $(ping_once) == 1 ]] || { cat daemon.log >&2; echo "daemon does not answer" >&2; exit 1; }
# The daemon releases its start-up memory 2-4 s after its last request
# (daemon.SettleDelay): the readiness pings above.
log "daemon answers; settling 5 s, then $IDLE_S s idle"
sleep 5

mem() { awk -v f="$1:" '$1 == f { print $2 }' "/proc/$daemon_pid/smaps_rollup"; }
sched() { awk '{ ns += $1; n += $3 } END { printf "%d %d", ns, n }' /proc/"$daemon_pid"/task/*/schedstat; }
# The binary's pages in the page cache (kB), mapped or not: what the host
# holds for the daemon's binary beyond its PSS.
cached() { if command -v fincore >/dev/null; then fincore -b -n -o RES mco-daemon | awk '{ print int($1 / 1024) }'; else echo -1; fi; }
# One row: label, then RSS, PSS, anon, file and cached kB.
rows=()
snap() { rows+=("$1 $(mem Rss) $(mem Pss) $(mem Pss_Anon) $(mem Pss_File) $(cached)"); }
snap "ready (start-up settled)"
read -r ns0 n0 <<<"$(sched)"
t0=$EPOCHREALTIME
sleep "$IDLE_S"
read -r ns1 n1 <<<"$(sched)"
t1=$EPOCHREALTIME
threads=$(ls /proc/"$daemon_pid"/task | wc -l)
snap "after $IDLE_S s idle"

# n requests from 4 clients at once, pings and inventory (a larger reply:
# facts, agents, classes) in turn.
requests() {
	local per=$(($1 / 4)) pids=()
	for _ in 1 2 3 4; do
		for i in $(seq "$per"); do
			action=ping
			((i % 2)) || action=inventory
			"$mco" -c client.conf rpc rpcutil "$action" --nodes nodes.txt --timeout 2s </dev/null >/dev/null 2>&1 || true
		done &
		pids+=($!)
	done
	wait "${pids[@]}"
}
done_requests=0
for target in $REQUESTS; do
	log "$((target - done_requests)) more requests (to $target), then memory again"
	requests $((target - done_requests))
	done_requests=$target
	sleep 1
	snap "after $target requests"
done
if [[ -n $REQUESTS ]]; then
	# The daemon hands memory back 15-30 s after the last request
	# (daemon.QuietRelease): wait past that.
	quiet=$((IDLE_S > 35 ? IDLE_S : 35))
	log "idle again for $quiet s"
	sleep "$quiet"
	snap "$quiet s after the last request"
fi

python3 - "$ns0" "$n0" "$ns1" "$n1" "$t0" "$t1" "$threads" "${rows[@]}" <<'EOF'
import os, sys, time
ns0, n0, ns1, n1 = map(int, sys.argv[1:5])
t0, t1 = map(float, sys.argv[5:7])
threads = sys.argv[7]
model = next((l.split(":", 1)[1].strip() for l in open("/proc/cpuinfo") if l.startswith("model name")), "unknown CPU")
load = open("/proc/loadavg").read().split()[:3]
wall = t1 - t0
print(f"### One node daemon alone ({model}, {os.cpu_count()} CPUs, {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}, load average {' '.join(load)})\n")
print("| idle window (s) | idle CPU (ms per s) | wake-ups per s | threads |")
print("|---|---|---|---|")
print(f"| {wall:.0f} | {(ns1 - ns0) / 1e6 / wall:.3f} | {(n1 - n0) / wall:.2f} | {threads} |\n")
print("| when | RSS (MB) | PSS (MB) | PSS anon (MB) | PSS file (MB) | binary in the page cache (MB) |")
print("|---|---|---|---|---|---|")
mb = lambda kb: f"{int(kb) / 1024:.1f}" if int(kb) >= 0 else "—"
for row in sys.argv[8:]:
    *label, rss, pss, anon, file, cached = row.split()
    print(f"| {' '.join(label)} | {mb(rss)} | {mb(pss)} | {mb(anon)} | {mb(file)} | {mb(cached)} |")
EOF
