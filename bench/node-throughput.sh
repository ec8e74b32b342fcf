#!/usr/bin/env bash
# node-throughput.sh — requests per second one node handles with policy and
# audit on (issue 14), read beside the machine's Ed25519 ceiling.
#
# Usage: bench/node-throughput.sh [REV ...]
#
# Builds internal/node's test binary once per revision (default: the working
# tree; a REV such as main~3 is built from a temporary git worktree), then
# runs ROUNDS rounds (default 5). Each round runs every binary's
# BenchmarkNode policy+audit, broker-delivered and in-process, one after the
# other, and then BenchmarkMandatoryCrypto/verify+sign, the ceiling no node
# can pass. Some VMs change speed from minute to minute (the host
# throttles them), so only figures from the same round compare, and req/s
# means little without the ceiling beside it.
#
# Environment: ROUNDS (default 5), N (default 40000, requests per run).
set -euo pipefail

ROUNDS=${ROUNDS:-5}
N=${N:-40000}
[[ $ROUNDS =~ ^[1-9][0-9]*$ ]] || { echo "ROUNDS must be a positive integer" >&2; exit 2; }
[[ $N =~ ^[1-9][0-9]*$ ]] || { echo "N must be a positive integer" >&2; exit 2; }

root=$(cd "$(dirname "$0")/.." && pwd)
work=$(mktemp -d)
trap 'git -C "$root" worktree prune; rm -rf "$work"' EXIT

revs=("$@")
[[ ${#revs[@]} -gt 0 ]] || revs=(worktree)
names=()
for rev in "${revs[@]}"; do
	name=$(printf '%s' "$rev" | tr -c 'A-Za-z0-9._-' '_')
	if [[ $rev == worktree ]]; then
		(cd "$root" && go test -c -o "$work/$name.test" ./internal/node/)
	else
		git -C "$root" worktree add -q --detach "$work/src-$name" "$rev"
		(cd "$work/src-$name" && go test -c -o "$work/$name.test" ./internal/node/)
		git -C "$root" worktree remove --force "$work/src-$name"
	fi
	names+=("$name")
done

# req/s and cpu-µs/req of one benchmark line.
fields() { awk '/^Benchmark/ { for (i = 1; i <= NF; i++) { if ($i == "req/s") r = $(i-1); if ($i == "cpu-µs/req") c = $(i-1) } } END { printf "%s req/s (%s cpu-µs/req)", r, c }'; }

echo "$(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2- | sed 's/^ //'), $(nproc) CPUs, $(go version | cut -d' ' -f3), $(date -u '+%Y-%m-%d %H:%M UTC'), load average $(cut -d' ' -f1-3 /proc/loadavg)"
echo
echo "| round | ceiling (verify+sign req/s) | binary | broker-delivered | in-process |"
echo "|---|---|---|---|---|"
for round in $(seq 1 "$ROUNDS"); do
	rows=()
	for name in "${names[@]}"; do
		b=$("$work/$name.test" -test.run x -test.bench 'Node/policy.audit$' -test.benchtime "${N}x" | fields)
		i=$("$work/$name.test" -test.run x -test.bench 'Node/inprocess/policy.audit$' -test.benchtime "${N}x" | fields)
		rows+=("$name | $b | $i")
	done
	ceiling=$("$work/${names[0]}.test" -test.run x -test.bench 'MandatoryCrypto/verify.sign$' |
		awk '/^Benchmark/ { for (i = 1; i <= NF; i++) if ($i == "req/s") print $(i-1) }')
	for row in "${rows[@]}"; do
		echo "| $round ($(date -u +%T)) | $ceiling | $row |"
	done
done
