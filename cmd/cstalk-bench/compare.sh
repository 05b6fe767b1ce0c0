#!/usr/bin/env bash
# compare.sh [broker|chat|all] puts cstalk and RabbitMQ Web-STOMP through the
# same loads on this machine, each server pinned to core 0 and the load
# generator to core 1.
#
# broker: cstalk's broker package alone (no chat, no store):
#   1. KB of server memory per idle connection (CONNECT + one SUBSCRIBE),
#   2. maximum delivered messages/s (closed loop, bounded in-flight window;
#      best of REPEAT runs),
#   3. latency percentiles at half of each server's maximum, and at one rate
#      common to both (half of the slower server's maximum).
# chat: the counseling workload: CHAT_CUSTOMERS rooms, each with a customer
#   and a counselor connection over raw STOMP WebSocket; customers send
#   CHAT_RATES messages/s in total (the last rate is meant to saturate), every
#   message stored, then delivered to both. cstalk serve --demo on SQLite
#   (every message fsynced before anyone sees it) and, when MARIADB_DSN is
#   set (mysql://root@127.0.0.1:3306), on a fresh MariaDB database with
#   mysqld pinned to core 0 too and its CPU counted; RabbitMQ runs the same
#   connections and rate as plain pub/sub, storing nothing. Memory per idle
#   chat connection is read with CHAT_IDLE_CUSTOMERS rooms on a fresh server
#   (RabbitMQ: as many as its open-file limit allows, up to that).
#   With REDIS_URL (redis://127.0.0.1:6379/0) as well as MARIADB_DSN, the
#   first rate again across two nodes sharing the database and the Redis
#   bus: customers on one node, counselors on the other, so every delivery
#   to a counselor crosses the bus; both nodes, mysqld and redis-server on
#   core 0, all four counted.
#
# Needs root (to pin and prioritize RabbitMQ and mysqld), RabbitMQ running locally, jq.
# Results go to $OUT (default /tmp/cstalk-bench-results) as JSON, and a
# summary to stdout. Every run is bounded by its --duration; the script ends
# by itself.
set -euo pipefail
WHAT=${1:-all}
case "$WHAT" in broker | chat | all) ;; *)
	echo "usage: $0 [broker|chat|all]" >&2
	exit 2
	;;
esac

cd "$(dirname "$0")/../.."
OUT=${OUT:-/tmp/cstalk-bench-results}
SUBS=${SUBS:-100}
PUBS=${PUBS:-4}
DESTS=${DESTS:-20}
DURATION=${DURATION:-15s}
WARMUP=${WARMUP:-3s}
IDLE_CONNS=${IDLE_CONNS:-2000}
REPEAT=${REPEAT:-3}
PORT=${PORT:-18080}
CHAT_PORT=${CHAT_PORT:-18090}
CHAT_CUSTOMERS=${CHAT_CUSTOMERS:-200}
CHAT_RATES=${CHAT_RATES:-"2000 20000"}
CHAT_IDLE_CUSTOMERS=${CHAT_IDLE_CUSTOMERS:-1000}
# A saturating rate leaves a backlog the server keeps delivering after the
# generator stops; what has not come when the drain gives up counts as lost.
# At 20,000/s for 15 s MariaDB's backlog took more than the bench's 20 s.
# Under a minute: RabbitMQ's Web-STOMP closes a WebSocket idle that long
# (cowboy's idle timeout), and the customers are idle once sending stops.
CHAT_DRAIN_MAX=${CHAT_DRAIN_MAX:-40s}
MARIADB_DSN=${MARIADB_DSN:-}
REDIS_URL=${REDIS_URL:-}
CSTALK_URL=ws://127.0.0.1:$PORT/ws/websocket
RABBIT_URL=ws://127.0.0.1:15674/ws

mkdir -p "$OUT"
BIN=$OUT/cstalk-bench
go build -o "$BIN" ./cmd/cstalk-bench
ulimit -n 65536 2>/dev/null || ulimit -n "$(ulimit -Hn)"

RABBIT_PID=$(pgrep -x beam.smp | head -n1)
[ -n "$RABBIT_PID" ] || { echo "RabbitMQ (beam.smp) is not running" >&2; exit 1; }
RABBIT_AFFINITY=$(taskset -pc "$RABBIT_PID" | awk -F': ' '{print $2}')
rabbitmq-plugins enable rabbitmq_web_stomp >/dev/null
# RabbitMQ sizes its socket limit from the open-file limit it started with.
RABBIT_NOFILE=$(awk '/Max open files/ {print $4}' "/proc/$RABBIT_PID/limits")
NEED_FILES=0
if [ "$WHAT" != chat ]; then NEED_FILES=$((IDLE_CONNS + SUBS + PUBS + 200)); fi
CHAT_FILES=$((2 * CHAT_CUSTOMERS + 200))
if [ "$WHAT" != broker ] && [ "$CHAT_FILES" -gt "$NEED_FILES" ]; then NEED_FILES=$CHAT_FILES; fi
# RabbitMQ's idle chat connections are as many as its limit allows (memory
# per connection hardly depends on how many there are); cstalk's are always
# CHAT_IDLE_CUSTOMERS rooms.
RABBIT_IDLE_CUSTOMERS=$(((RABBIT_NOFILE - 200) / 2))
if [ "$RABBIT_IDLE_CUSTOMERS" -gt "$CHAT_IDLE_CUSTOMERS" ]; then RABBIT_IDLE_CUSTOMERS=$CHAT_IDLE_CUSTOMERS; fi
if [ "$RABBIT_NOFILE" -lt "$NEED_FILES" ] || { [ "$WHAT" != broker ] && [ "$RABBIT_IDLE_CUSTOMERS" -lt 100 ]; }; then
	echo "RabbitMQ may open only $RABBIT_NOFILE files; restart it with a higher limit:" >&2
	echo "  rabbitmqctl stop; (ulimit -n 20000; service rabbitmq-server start)" >&2
	exit 1
fi

RABBIT_SCHEDULERS=$(rabbitmqctl eval 'erlang:system_info(schedulers_online).' 2>/dev/null | tail -n1)
BROKER_PID=
CHAT_PID=
MEMBER_PID=
MYSQLD_PID=
MYSQLD_AFFINITY=
REDIS_PID=
REDIS_AFFINITY=
stop_chat() {
	for pid in $CHAT_PID $MEMBER_PID; do kill "$pid" 2>/dev/null || true; wait "$pid" 2>/dev/null || true; done
	CHAT_PID= MEMBER_PID=
}
# Every thread of the servers under test, and the generator, runs at nice
# -20, so that other work on the machine (a build, a test suite) takes
# what they leave instead of delaying them; boost remembers what it found
# and cleanup puts it back.
# Threads the boosted ones start later inherit -20; unboost gives them the
# niceness their process's main thread had.
declare -A NICE_WAS=() # tid -> niceness before boost
BOOSTED=()
boost() { # pid
	local tid ni
	BOOSTED+=("$1")
	while read -r tid ni; do
		NICE_WAS[$tid]=$ni
		renice -n -20 -p "$tid" >/dev/null 2>&1 || true
	done < <(ps -L -o tid=,ni= -p "$1")
}
unboost() {
	local pid tid
	for pid in "${BOOSTED[@]}"; do
		for tid in $(ps -L -o tid= -p "$pid"); do
			renice -n "${NICE_WAS[$tid]:-${NICE_WAS[$pid]:-0}}" -p "$tid" >/dev/null 2>&1 || true
		done
	done
	BOOSTED=()
}
cleanup() {
	unboost
	rabbitmqctl eval "erlang:system_flag(schedulers_online, $RABBIT_SCHEDULERS)." >/dev/null 2>&1 || true
	stop_chat
	taskset -a -pc "$RABBIT_AFFINITY" "$RABBIT_PID" >/dev/null 2>&1 || true
	if [ -n "$MYSQLD_PID" ]; then taskset -a -pc "$MYSQLD_AFFINITY" "$MYSQLD_PID" >/dev/null 2>&1 || true; fi
	if [ -n "$REDIS_PID" ]; then taskset -a -pc "$REDIS_AFFINITY" "$REDIS_PID" >/dev/null 2>&1 || true; fi
	if [ -n "$BROKER_PID" ]; then kill "$BROKER_PID" 2>/dev/null || true; wait "$BROKER_PID" 2>/dev/null || true; fi
}
trap cleanup EXIT

start_broker() {
	nice -n -20 taskset -c 0 "$BIN" broker --addr "127.0.0.1:$PORT" --for 30m 2>>"$OUT/broker.log" &
	BROKER_PID=$!
	for _ in $(seq 100); do
		if (exec 3<>"/dev/tcp/127.0.0.1/$PORT") 2>/dev/null; then return 0; fi
		sleep 0.1
	done
	echo "broker did not start; see $OUT/broker.log" >&2
	exit 1
}

load() { # name, then load flags
	local name=$1
	shift
	echo "== $name" >&2
	nice -n -20 taskset -c 1 "$BIN" load --json --subs "$SUBS" --pubs "$PUBS" --dests "$DESTS" \
		--duration "$DURATION" --warmup "$WARMUP" "$@" 2>>"$OUT/load.log" | tee "$OUT/$name.json" >&2
}

idle() { # name, then idle flags
	local name=$1
	shift
	echo "== $name" >&2
	nice -n -20 taskset -c 1 "$BIN" idle --json --conns "$IDLE_CONNS" "$@" 2>>"$OUT/load.log" | tee "$OUT/$name.json" >&2
}

# Other work on the machine skews every figure; the load average says how much.
echo "start: $(uptime)" | tee "$OUT/uptime.txt" >&2

# Both servers on core 0, the generator alone on core 1, all at nice -20.
# RabbitMQ gets one scheduler for its one core: two schedulers sharing a
# core only take turns spinning (measured: about half the throughput).
taskset -a -pc 0 "$RABBIT_PID" >/dev/null
boost "$RABBIT_PID"
rabbitmqctl eval 'erlang:system_flag(schedulers_online, 1).' >/dev/null

if [ "$WHAT" != chat ]; then
start_broker

# Idle first, on a fresh cstalk process whose heap has not grown under load.
idle cstalk-idle --url "$CSTALK_URL" --pid "$BROKER_PID"
idle rabbit-idle --url "$RABBIT_URL" --topic-style rabbit --pid "$RABBIT_PID"

# The maximum is the best of REPEAT runs, alternating servers, so a burst of
# other work on the machine does not decide it.
for i in $(seq "$REPEAT"); do
	load "cstalk-max-$i" --url "$CSTALK_URL" --pid "$BROKER_PID" --rate 0
	load "rabbit-max-$i" --url "$RABBIT_URL" --topic-style rabbit --pid "$RABBIT_PID" --rate 0
done
best() { jq -s 'max_by(.delivered_per_sec)' "$OUT/$1"-max-*.json >"$OUT/$1-max.json"; }
best cstalk
best rabbit

half() { jq '.published_per_sec / 2 | floor' "$OUT/$1.json"; }
CSTALK_HALF=$(half cstalk-max)
RABBIT_HALF=$(half rabbit-max)
COMMON=$((CSTALK_HALF < RABBIT_HALF ? CSTALK_HALF : RABBIT_HALF))

load cstalk-half --url "$CSTALK_URL" --pid "$BROKER_PID" --rate "$CSTALK_HALF"
load rabbit-half --url "$RABBIT_URL" --topic-style rabbit --pid "$RABBIT_PID" --rate "$RABBIT_HALF"
load cstalk-common --url "$CSTALK_URL" --pid "$BROKER_PID" --rate "$COMMON"
load rabbit-common --url "$RABBIT_URL" --topic-style rabbit --pid "$RABBIT_PID" --rate "$COMMON"

kill "$BROKER_PID" 2>/dev/null || true
wait "$BROKER_PID" 2>/dev/null || true
BROKER_PID=
fi

# start_node PORT DB [serve flags]: cstalk serve --demo on core 0; sets NODE_PID.
start_node() {
	local port=$1 db=$2
	shift 2
	nice -n -20 taskset -c 0 "$OUT/cstalk" serve --demo --addr "127.0.0.1:$port" --db "$db" \
		--jwt-secret cstalk-bench-jwt-secret --upload-dir "$OUT/chat/uploads-$port" --log-level warn \
		--chat-event-rate 0 "$@" 2>>"$OUT/chat-server.log" &
	NODE_PID=$!
	for _ in $(seq 300); do
		if curl -fs -o /dev/null "http://127.0.0.1:$port/healthz"; then return 0; fi
		sleep 0.1
	done
	echo "cstalk did not start; see $OUT/chat-server.log" >&2
	exit 1
}

# start_chat DB [serve flags]: one node with a fresh store.
start_chat() {
	stop_chat
	rm -rf "$OUT/chat" && mkdir -p "$OUT/chat"
	start_node "$CHAT_PORT" "$@"
	CHAT_PID=$NODE_PID
}

chat() { # name, then chat flags
	local name=$1
	shift
	echo "== $name" >&2
	nice -n -20 taskset -c 1 "$BIN" chat --json --customers "$CHAT_CUSTOMERS" --duration "$DURATION" --warmup "$WARMUP" \
		--drain-max "$CHAT_DRAIN_MAX" "$@" \
		2>>"$OUT/load.log" | tee "$OUT/$name.json" >&2
}

if [ "$WHAT" != broker ]; then
	go build -o "$OUT/cstalk" ./cmd/cstalk
	CSTALK_CHAT="--http http://127.0.0.1:$CHAT_PORT"
	RABBIT_CHAT="--rabbit $RABBIT_URL --pid $RABBIT_PID"

	# Memory per idle chat connection: a fresh server, CHAT_IDLE_CUSTOMERS
	# rooms with their customers and counselors subscribed.
	start_chat "sqlite:$OUT/chat/cstalk.db"
	chat chat-idle-cstalk $CSTALK_CHAT --pid "$CHAT_PID" --idle --customers "$CHAT_IDLE_CUSTOMERS"
	chat chat-idle-rabbit $RABBIT_CHAT --idle --customers "$RABBIT_IDLE_CUSTOMERS"

	start_chat "sqlite:$OUT/chat/cstalk.db"
	for rate in $CHAT_RATES; do
		chat "chat-sqlite-$rate" $CSTALK_CHAT --pid "$CHAT_PID" --rate "$rate"
		chat "chat-rabbit-$rate" $RABBIT_CHAT --rate "$rate"
	done
	stop_chat

	if [ -n "$MARIADB_DSN" ]; then
		MYSQLD_PID=$(pgrep -x mariadbd || pgrep -x mysqld | head -n1)
		MYSQLD_AFFINITY=$(taskset -pc "$MYSQLD_PID" | awk -F': ' '{print $2}')
		db=cstalk_bench_$(date +%s)
		mariadb -h 127.0.0.1 -uroot -e "CREATE DATABASE $db"
		taskset -a -pc 0 "$MYSQLD_PID" >/dev/null
		boost "$MYSQLD_PID"
		start_chat "$MARIADB_DSN/$db"
		for rate in $CHAT_RATES; do
			chat "chat-mariadb-$rate" $CSTALK_CHAT --pid "$CHAT_PID" --db-pid "$MYSQLD_PID" --rate "$rate"
		done
		stop_chat
		mariadb -h 127.0.0.1 -uroot -e "DROP DATABASE $db"

		if [ -n "$REDIS_URL" ]; then
			REDIS_PID=$(pgrep -x redis-server | head -n1)
			REDIS_AFFINITY=$(taskset -pc "$REDIS_PID" | awk -F': ' '{print $2}')
			taskset -a -pc 0 "$REDIS_PID" >/dev/null
			boost "$REDIS_PID"
			db=cstalk_bench_two_$(date +%s)
			mariadb -h 127.0.0.1 -uroot -e "CREATE DATABASE $db"
			start_chat "$MARIADB_DSN/$db" --redis "$REDIS_URL"
			start_node $((CHAT_PORT + 1)) "$MARIADB_DSN/$db" --redis "$REDIS_URL"
			MEMBER_PID=$NODE_PID
			rate=${CHAT_RATES%% *}
			chat "chat-two-nodes-$rate" $CSTALK_CHAT --member-http "http://127.0.0.1:$((CHAT_PORT + 1))" \
				--pid "$CHAT_PID" --member-pid "$MEMBER_PID" --db-pid "$MYSQLD_PID" --bus-pid "$REDIS_PID" --rate "$rate"
			stop_chat
			taskset -a -pc "$REDIS_AFFINITY" "$REDIS_PID" >/dev/null
			mariadb -h 127.0.0.1 -uroot -e "DROP DATABASE $db"
		fi
		taskset -a -pc "$MYSQLD_AFFINITY" "$MYSQLD_PID" >/dev/null
	fi
fi
echo "end: $(uptime)" | tee -a "$OUT/uptime.txt" >&2

row() { # name, result file
	jq -r --arg r "$1" '[$r, (.published_per_sec|floor), (.delivered_per_sec|floor), .p50_us, .p99_us, .p999_us,
		.max_us, .lost, .errors, ((.server_cpu_pct // 0)|floor), ((.delivered_per_server_cpu_sec // 0)|floor)] | @tsv' "$2" |
		awk -F'\t' '{printf "%-14s %10s %10s %8s %8s %8s %8s %6s %6s %6s %12s\n", $1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11}'
}

if [ "$WHAT" != chat ]; then
	echo
	echo "broker only: subs=$SUBS pubs=$PUBS dests=$DESTS (fan-out $((SUBS / DESTS))) duration=$DURATION, servers on core 0, generator on core 1"
	printf '%-14s %10s %10s %8s %8s %8s %8s %6s %6s %6s %12s\n' run pub/s deliv/s p50us p99us p999us maxus lost errors cpu% deliv/cpu-s
	for r in cstalk-max rabbit-max cstalk-half rabbit-half cstalk-common rabbit-common; do
		row "$r" "$OUT/$r.json"
	done
	for r in cstalk-idle rabbit-idle; do
		jq -r --arg r "$r" '"\($r): \(.conns) idle connections, \(.kib_per_conn) KiB each"' "$OUT/$r.json"
	done
fi

chatrow() { # name, result file
	jq -r --arg r "$1" '[$r, (.published_per_sec|floor), (.delivered_per_sec|floor), .p50_us, .p99_us, .p999_us,
		.lost, .errors, ((.server_cpu_pct // 0)|floor), ((.db_cpu_pct // 0)|floor), ((.delivered_per_server_cpu_sec // 0)|floor),
		((.delivered_per_total_cpu_sec // 0)|floor), ((.cpu_us_per_message // 0)|floor), ((.batch_mean // 0)*10|floor/10),
		((.fsyncs_per_message // 0)*100|floor/100), ((.rss_kib_per_conn // 0)|floor)] | @tsv' "$2" |
		awk -F'\t' '{printf "%-20s %8s %8s %7s %7s %7s %5s %6s %5s %5s %10s %10s %7s %6s %7s %8s\n", $1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16}'
}
if [ "$WHAT" != broker ]; then
	echo
	echo "chat: $CHAT_CUSTOMERS rooms, a customer and a counselor connection each; every message delivered to both (RabbitMQ: plain pub/sub, nothing stored)"
	echo "servers (and mysqld) on core 0, generator on core 1, duration=$DURATION warm-up=$WARMUP"
	printf '%-20s %8s %8s %7s %7s %7s %5s %6s %5s %5s %10s %10s %7s %6s %7s %8s\n' run msg/s deliv/s p50us p99us p999us lost errors cpu% db% deliv/cpu-s +db/cpu-s us/msg batch fsync/m rssKiB/c
	for r in "$OUT"/chat-sqlite-*.json "$OUT"/chat-rabbit-*.json "$OUT"/chat-mariadb-*.json "$OUT"/chat-two-nodes-*.json; do
		[ -e "$r" ] || continue
		chatrow "$(basename "$r" .json)" "$r"
	done
	for r in "$OUT"/chat-two-nodes-*.json; do
		[ -e "$r" ] || continue
		jq -r --arg r "$(basename "$r" .json)" '"\($r): cpu% is node A (customers); node B (counselors) \(.member_cpu_pct|floor)%, redis-server \(.bus_cpu_pct|floor)%, both counted in +db/cpu-s and us/msg"' "$r"
	done
	for r in chat-idle-cstalk chat-idle-rabbit; do
		jq -r --arg r "$r" '"\($r): \(.subs) idle chat connections (private and room subscriptions), \(.rss_kib_per_conn|floor) KiB each"' "$OUT/$r.json"
	done
fi
