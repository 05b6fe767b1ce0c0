#!/usr/bin/env bash
# run.sh puts `cstalk serve` through cstalk-videobench on one node and on
# two, RUNS times each: forwarded packets/s per server core, join to first
# video (direct, and relayed through the node that does not host the room),
# and the CPU of recording (plain and recorded rooms in turn, RECORD_ROUNDS
# pairs).
#
# The nodes share a fresh MariaDB database (created here, dropped at the
# end) and Redis. On this 2-core machine the node that hosts the room is
# pinned to core 0, the bench (which is the heavier side: it encodes nothing
# but runs every publisher's and subscriber's WebRTC stack) to core 1, and
# the second node, which only relays signaling, to core 1 beside it; each
# Go process takes GOMAXPROCS=1 from its affinity. Nothing runs under nice:
# a niced bench would starve the publishers and the server would forward
# less, and renicing the server would change what it competes with.
#
# Results go to $OUT (default /tmp/cstalk-videobench), one file per run,
# with `uptime` before each.
set -euo pipefail
cd "$(dirname "$0")/../.."
OUT=${OUT:-/tmp/cstalk-videobench}
RUNS=${RUNS:-2}
PUBS=${PUBS:-4}
SUBS=${SUBS:-8}
DURATION=${DURATION:-20s}
WARMUP=${WARMUP:-5s}
JOINS=${JOINS:-30}
RECORD_ROUNDS=${RECORD_ROUNDS:-3}
MYSQL_HOST=${MYSQL_HOST:-127.0.0.1}
MYSQL_PORT=${MYSQL_PORT:-3306}
REDIS_URL=${REDIS_URL:-redis://127.0.0.1:6379/5}
PORT=${PORT:-18101}

mkdir -p "$OUT"
go build -o "$OUT/cstalk" ./cmd/cstalk
go build -o "$OUT/cstalk-videobench" ./cmd/cstalk-videobench
DB=cstalk_vbench_$$
mysql -uroot -h"$MYSQL_HOST" -P"$MYSQL_PORT" -e "CREATE DATABASE $DB CHARACTER SET utf8mb4 COLLATE utf8mb4_unicode_ci"
SECRET=videobench-$(head -c 12 /dev/urandom | od -An -tx1 | tr -d ' \n')
PIDS=()
stop_nodes() {
	for pid in "${PIDS[@]}"; do kill -TERM "$pid" 2>/dev/null || true; done
	for pid in "${PIDS[@]}"; do wait "$pid" 2>/dev/null || true; done
	PIDS=()
}
cleanup() {
	stop_nodes
	mysql -uroot -h"$MYSQL_HOST" -P"$MYSQL_PORT" -e "DROP DATABASE IF EXISTS $DB" || true
}
trap cleanup EXIT

# start_node NAME PORT CPU [ARGS...] runs a node pinned to CPU and waits
# until it is ready.
start_node() {
	local name=$1 port=$2 cpu=$3
	shift 3
	mkdir -p "$OUT/$name"
	(cd "$OUT/$name" && exec taskset -c "$cpu" "$OUT/cstalk" serve --addr "127.0.0.1:$port" \
		--video-node-addr "127.0.0.1:$port" --db "mysql://root@$MYSQL_HOST:$MYSQL_PORT/$DB" \
		--redis "$REDIS_URL" --jwt-secret "$SECRET" --recordings-dir "$OUT/$name/recordings" \
		--log-level warn "$@" 2>>"$OUT/$name.log") &
	PIDS+=($!)
	for _ in $(seq 300); do
		if curl -fs "http://127.0.0.1:$port/readyz" >/dev/null; then return; fi
		sleep 0.1
	done
	echo "node $name did not become ready; see $OUT/$name.log" >&2
	exit 1
}

for run in $(seq "$RUNS"); do
	for nodes in 1 2; do
		start_node a "$PORT" 0 --demo
		urls=http://127.0.0.1:$PORT
		pids=${PIDS[0]}
		if [ "$nodes" = 2 ]; then
			start_node b $((PORT + 1)) 1
			urls=$urls,http://127.0.0.1:$((PORT + 1))
			pids=$pids,${PIDS[1]}
		fi
		f=$OUT/nodes$nodes-run$run.txt
		{
			echo "uptime: $(uptime)"
			taskset -c 1 "$OUT/cstalk-videobench" -nodes "$urls" -pids "$pids" -publishers "$PUBS" -subscribers "$SUBS" \
				-duration "$DURATION" -warmup "$WARMUP" -joins "$JOINS" -record -record-rounds "$RECORD_ROUNDS"
			echo "uptime: $(uptime)"
		} 2>&1 | tee "$f"
		stop_nodes
	done
done
