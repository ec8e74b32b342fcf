# bench/lib.sh — the scaffolding the bench/ scripts share; sourced, not run.
#
# bench_init NAME sets repo (the checkout), work (a throw-away directory) and
# a trap that, on exit, stops the node daemons in pids (first, so the broker
# does not log their disconnections as errors) and the broker, then removes
# work unless KEEP_WORK=1. Then: bench_pki issues the CA, the broker's and the
# bench client's certificates; bench_broker starts a broker on a free
# loopback port; bench_client_conf and bench_policy write the client's
# configuration and an ActionPolicy allowing it rpcutil.

# bench_init NAME: checks the tools every script needs and sets up work and
# the cleanup trap.
bench_init() {
	bench_name=$1
	for tool in go python3; do
		command -v "$tool" >/dev/null || { echo "$bench_name: $tool is required" >&2; exit 1; }
	done
	[[ -r /proc/self/smaps_rollup ]] || { echo "$bench_name: /proc/PID/smaps_rollup is required (Linux ≥ 4.14)" >&2; exit 1; }
	repo=$(cd "$(dirname "${BASH_SOURCE[1]}")/.." && pwd)
	work=$(mktemp -d "${TMPDIR:-/tmp}/mco-${bench_name%.sh}.XXXXXX")
	pids=()
	broker_pid=
	trap bench_cleanup EXIT INT TERM
}

bench_cleanup() {
	local rc=$?
	trap - EXIT INT TERM
	if ((${#pids[@]})); then kill -TERM "${pids[@]}" 2>/dev/null || true; fi
	[[ -n $broker_pid ]] && kill -TERM "$broker_pid" 2>/dev/null || true
	wait 2>/dev/null || true
	if [[ ${KEEP_WORK:-} == 1 ]]; then echo "work directory kept: $work" >&2; else rm -rf "$work"; fi
	exit "$rc"
}

log() { printf '[%s] %s\n' "$(date +%T)" "$*" >&2; }

free_port() {
	python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1]); s.close()'
}
port_open() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

# bench_pki: in work/pki, a CA and the broker (127.0.0.1) and
# bench.mcollective client certificates, with the binary $mco.
bench_pki() {
	"$mco" pki init --dir pki >/dev/null
	"$mco" pki issue broker broker --host 127.0.0.1 --dir pki >/dev/null
	"$mco" pki issue client bench.mcollective --dir pki >/dev/null
}

# bench_broker: starts `mco broker run` on a free port and waits until it
# listens; sets port and broker_pid. A port found free can be taken before
# the broker binds it: it retries with a new one when the broker exits early.
bench_broker() {
	local attempt deadline
	for attempt in 1 2 3 4 5; do
		port=$(free_port)
		cat >broker.conf <<EOF
listen = 127.0.0.1:$port
tls.ca = $work/pki/ca.crt
tls.cert = $work/pki/certs/broker.crt
tls.key = $work/pki/private/broker.key
EOF
		"$mco" broker run -c broker.conf --log-level warn >broker.log 2>&1 &
		broker_pid=$!
		deadline=$((SECONDS + 10))
		until port_open "$port"; do
			if ! kill -0 "$broker_pid" 2>/dev/null; then broker_pid=; break; fi
			((SECONDS < deadline)) || { echo "broker did not listen on $port within 10s; see broker.log" >&2; exit 1; }
			sleep 0.05
		done
		[[ -n $broker_pid ]] && break
		log "broker exited (port $port taken?); retrying"
	done
	[[ -n $broker_pid ]] || { cat broker.log >&2; echo "broker failed to start" >&2; exit 1; }
	log "broker listening on 127.0.0.1:$port (pid $broker_pid)"
}

# bench_client_conf: client.conf for the bench client and the broker.
bench_client_conf() {
	cat >client.conf <<EOF
broker = tls://127.0.0.1:$port
tls.ca = $work/pki/ca.crt
tls.cert = $work/pki/certs/bench.mcollective.crt
tls.key = $work/pki/private/bench.mcollective.key
EOF
}

# bench_policy: work/policy, where the bench client may call rpcutil (and
# nothing else: daemons run with ActionPolicy on, as deployed).
bench_policy() {
	mkdir -p policy
	printf 'policy default deny\nallow\tcert=bench.mcollective\t*\t*\t*\n' >policy/rpcutil.policy
}
