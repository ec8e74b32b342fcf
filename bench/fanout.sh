#!/usr/bin/env bash
# fanout.sh N — fan-out benchmark with real processes (targets: docs/benchmarks.md).
#
# Builds mco, creates a throw-away PKI, starts one broker and N node daemons
# (each its own `mco server run` process) on loopback, waits until all N answer
# a ping, then times `mco rpc rpcutil ping` RUNS times with the node list known
# (--nodes FILE) and RUNS times with broadcast discovery. Prints a markdown
# block ready to paste into docs/benchmarks.md.
#
# Every client runs with stdin from /dev/null: piped input would change how
# mco discovers (automatic stdin discovery).
#
# Environment: RUNS (default 5), IDLE_S (default 5, seconds of the idle CPU
# window), KEEP_WORK=1 keeps the work directory (logs, configs) for
# inspection, MCO=path skips the build and uses that binary.
set -euo pipefail

usage() { echo "usage: $0 N   (N node daemons, 1..5000)" >&2; exit 2; }
[[ $# -eq 1 && $1 =~ ^[0-9]+$ && $1 -ge 1 && $1 -le 5000 ]] || usage
N=$1
RUNS=${RUNS:-5}
[[ $RUNS =~ ^[0-9]+$ && $RUNS -ge 1 ]] || { echo "RUNS must be a positive integer" >&2; exit 2; }
IDLE_S=${IDLE_S:-5}
[[ $IDLE_S =~ ^[0-9]+$ && $IDLE_S -ge 1 ]] || { echo "IDLE_S must be a positive integer" >&2; exit 2; }

# shellcheck source=bench/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
bench_init fanout.sh

now() { echo "$EPOCHREALTIME"; }
elapsed() { python3 -c "import sys; print(f'{float(sys.argv[2]) - float(sys.argv[1]):.2f}')" "$1" "$2"; }

# --- build -------------------------------------------------------------------
if [[ -n ${MCO:-} ]]; then
	mco=$MCO
else
	log "building mco"
	(cd "$repo" && go build -o "$work/mco" ./cmd/mco)
	mco=$work/mco
fi
cd "$work"

# --- PKI -----------------------------------------------------------------------
t0=$(now)
log "issuing CA, broker, client and $N node certificates"
bench_pki
# Serials are random and every certificate has its own files, so issuing in
# parallel is safe.
seq -f "node%04g.bench" 1 "$N" >nodes.txt
xargs -P 4 -I{} "$mco" pki issue node {} --dir pki <nodes.txt >/dev/null
pki_s=$(elapsed "$t0" "$(now)")

# --- broker --------------------------------------------------------------------
bench_broker
bench_client_conf

# --- daemons -------------------------------------------------------------------
# Paths in a configuration file are relative to its directory, so they are
# written absolute. Authorization and audit are on, as deployed (one policy
# allowing the bench client, an audit log per daemon); package and service
# agents are disabled so the daemons do not probe this machine's tools.
bench_policy
log "starting $N daemons"
t0=$(now)
i=0
while read -r name; do
	i=$((i + 1))
	d=nodes/$name
	mkdir -p "$d"
	printf 'role: %s\nrack: r%d\nbench: true\n' "$([[ $((i % 2)) == 0 ]] && echo web || echo db)" $((i % 10)) >"$d/facts.yaml"
	cat >"$d/server.conf" <<EOF
broker = tls://127.0.0.1:$port
tls.ca = $work/pki/ca.crt
tls.cert = $work/pki/certs/$name.crt
tls.key = $work/pki/private/$name.key
facts = $work/$d/facts.yaml
agents.disabled = package, service
# Not from Puppet's classfile: one puppet config print per daemon at start.
puppet.classes = false
policy.dir = $work/policy
audit.log = $work/$d/audit.log
request.replay_file = $work/$d/replay.seen
EOF
	"$mco" server run -c "$d/server.conf" --log-level warn </dev/null >"$d/log" 2>&1 &
	pids+=($!)
done <nodes.txt

count_replies() { # count_replies FILE: number of replies in an mco --json document
	python3 -c 'import json, sys; print(len(json.load(open(sys.argv[1]))["replies"]))' "$1" 2>/dev/null || echo 0
}

# Readiness: a directed ping to the known node list ends the moment every node
# has replied, and a short timeout bounds a round in which some have not yet
# subscribed, so the start-up figure carries no full discovery or ping timeout.
deadline=$((SECONDS + 30 + N / 5))
while :; do
	"$mco" -c client.conf rpc rpcutil ping --nodes nodes.txt --timeout 1s --json </dev/null >ping.json 2>ping.err || true
	got=$(count_replies ping.json)
	((got == N)) && break
	if ((SECONDS >= deadline)); then
		echo "only $got of $N daemons answer after the deadline; see $work/nodes/*/log" >&2
		KEEP_WORK=1
		exit 1
	fi
	dead=0
	for p in "${pids[@]}"; do kill -0 "$p" 2>/dev/null || dead=$((dead + 1)); done
	((dead == 0)) || { echo "$dead daemons exited; see $work/nodes/*/log" >&2; KEEP_WORK=1; exit 1; }
	sleep 0.5
done
startup_s=$(elapsed "$t0" "$(now)")
log "all $N daemons answer (startup ${startup_s}s)"

# --- memory, idle ----------------------------------------------------------------
# cpu_ms PID...: CPU time (ms) all threads of the processes have run, from
# schedstat (nanoseconds, unlike the 10 ms ticks of /proc/PID/stat).
cpu_ms() {
	local globs=() p
	for p in "$@"; do globs+=(/proc/"$p"/task/*/schedstat); done
	awk '{ s += $1 } END { printf "%.1f", s / 1e6 }' "${globs[@]}"
}
daemons_cpu_start=$(cpu_ms "${pids[@]}")
sleep 2 # let the readiness pings' garbage settle; daemons are idle from here
# Idle CPU: what N idle daemons burn per second (timers, file watching, NATS
# pings), measured over IDLE_S seconds and subtracted from the request figures.
idle_t0=$(now)
daemons_cpu_idle0=$(cpu_ms "${pids[@]}")
sleep "$IDLE_S"
daemons_cpu_idle=$(cpu_ms "${pids[@]}")
idle_t1=$(now)
broker_cpu_idle=$(cpu_ms "$broker_pid")
mem_kb() { # mem_kb PID FIELD: FIELD (Pss, Rss, Pss_Anon) of smaps_rollup in kB
	awk -v f="$2:" '$1 == f { print $2 }' "/proc/$1/smaps_rollup"
}
: >pss.txt
for p in "${pids[@]}"; do
	echo "$(mem_kb "$p" Pss) $(mem_kb "$p" Pss_Anon) $(mem_kb "$p" Rss)" >>pss.txt
done
broker_rss_idle=$(mem_kb "$broker_pid" Rss)

# --- runs ------------------------------------------------------------------------
TIMEFORMAT='%3R %3U %3S'
run_mode() { # run_mode LABEL ARGS...: RUNS timed runs, one line per run in LABEL.runs
	local label=$1 r out times replies ok
	shift
	: >"$label.runs"
	for ((r = 1; r <= RUNS; r++)); do
		out=$label.$r.json
		{ time "$mco" -c client.conf rpc rpcutil ping --json "$@" </dev/null >"$out" 2>"$label.$r.err"; } 2>"$label.$r.time" || true
		read -r wall user sys <"$label.$r.time"
		replies=$(count_replies "$out")
		ok=$(python3 -c 'import json, sys; print(json.load(open(sys.argv[1]))["stats"]["ok"])' "$out" 2>/dev/null || echo 0)
		echo "$wall $user $sys $replies $ok" >>"$label.runs"
	done
}
runs_t0=$(now)
log "timing $RUNS runs with known targets (--nodes)"
run_mode known --nodes nodes.txt
log "timing $RUNS runs with broadcast discovery"
run_mode broadcast

daemons_cpu_after=$(cpu_ms "${pids[@]}")
runs_t1=$(now)
broker_cpu_after=$(cpu_ms "$broker_pid")
broker_rss_after=$(mem_kb "$broker_pid" Rss)
: >pss_after.txt
for p in "${pids[@]}"; do echo "$(mem_kb "$p" Pss)" >>pss_after.txt; done

# --- report ----------------------------------------------------------------------
python3 - "$N" "$RUNS" "$pki_s" "$startup_s" "$broker_rss_idle" "$broker_rss_after" \
	"$daemons_cpu_start" "$daemons_cpu_idle" "$daemons_cpu_after" "$broker_cpu_idle" "$broker_cpu_after" \
	"$daemons_cpu_idle0" "$idle_t0" "$idle_t1" "$runs_t0" "$runs_t1" <<'EOF'
import statistics, sys
n, runs, pki_s, startup_s, b_idle, b_after = sys.argv[1:7]
d_start, d_idle, d_after, b_cpu_idle, b_cpu_after = map(float, sys.argv[7:12])
d_idle0, idle_t0, idle_t1, runs_t0, runs_t1 = map(float, sys.argv[12:17])
n, runs = int(n), int(runs)

def mode(label, title):
    rows = [l.split() for l in open(f"{label}.runs")]
    wall = [float(r[0]) for r in rows]
    cpu = [float(r[1]) + float(r[2]) for r in rows]
    replies = [int(r[3]) for r in rows]
    ok = [int(r[4]) for r in rows]
    every = "yes" if all(x == n for x in replies) and all(x == n for x in ok) else "NO"
    return (f"| {n} | {title} | {runs} | {min(wall):.3f} / {statistics.median(wall):.3f} / {max(wall):.3f} "
            f"| {statistics.median(cpu):.3f} | {every} ({', '.join(map(str, replies))}) |")

pss = [l.split() for l in open("pss.txt")]
p = [int(x[0]) for x in pss]
anon = [int(x[1]) for x in pss]
rss = [int(x[2]) for x in pss]
after = [int(l) for l in open("pss_after.txt") if l.strip()]
mb = lambda kb: kb / 1024

print(f"### Fan-out, {n} node daemons (separate processes, TLS, policy and audit on)\n")
print("| nodes | mode | runs | wall min / median / max (s) | client CPU median (s, user+sys) | all replies every run (replies per run) |")
print("|---|---|---|---|---|---|")
print(mode("known", "known targets (`--nodes`)"))
print(mode("broadcast", "broadcast discovery"))
print()
print("| nodes | daemon PSS idle avg / max (MB) | daemon Pss_Anon avg (MB) | daemon RSS avg (MB) | daemon PSS avg after runs (MB) | broker RSS idle / after runs (MB) | PKI issue (s) | daemon start → all answer (s) |")
print("|---|---|---|---|---|---|---|---|")
print(f"| {n} | {mb(statistics.mean(p)):.1f} / {mb(max(p)):.1f} | {mb(statistics.mean(anon)):.1f} | {mb(statistics.mean(rss)):.1f} "
      f"| {mb(statistics.mean(after)):.1f} | {mb(int(b_idle)):.1f} / {mb(int(b_after)):.1f} | {pki_s} | {startup_s} |")
# Every node handles one request per known-targets run and two per broadcast
# run (discovery, then the call).
requests = 3 * runs
print()
# Idle CPU per daemon in ms of CPU per second of wall time; the request figure
# subtracts what the daemons would have burnt idle during the timed runs.
idle_rate = (d_idle - d_idle0) / n / (idle_t1 - idle_t0)
busy = (d_after - d_idle) / n - idle_rate * (runs_t1 - runs_t0)
print("| nodes | daemon CPU start → ready avg (ms) | daemon idle CPU (ms per s) | daemon CPU per request, idle subtracted (ms) | broker CPU per fan-out (ms) |")
print("|---|---|---|---|---|")
print(f"| {n} | {d_start / n:.1f} | {idle_rate:.3f} | {busy / requests:.3f} | {(b_cpu_after - b_cpu_idle) / requests:.1f} |")
EOF
