#!/usr/bin/env bash
# bench/radius.sh: the RADIUS front end under load, driven by FreeRADIUS's
# radclient, with FreeRADIUS itself as the peer on the same machine. See the
# RADIUS section of docs/benchmarks.md for what each figure means.
#
#   bash bench/radius.sh
#
# It builds the bridge and the helpers under bench/radius/, writes every
# config and request file into a temporary directory, starts FreeRADIUS and
# the bridge on free loopback ports, stops whatever it started on exit, and
# prints a markdown table at the end. Needs go, curl, radclient
# (freeradius-utils) and freeradius. Knobs (environment):
#
#   RUNS=3                  interleaved runs per no-push path
#   NOPUSH_REQUESTS=20000   requests per run, unknown user (path a)
#   PASSWORD_REQUESTS=1000  requests per run, wrong password (path b)
#   PARALLEL=256            radclient -p for the no-push paths
#   PUSH_USERS=2000         users, one enrolled simulated phone each
#   PUSH_ROUNDS=10          rounds of one login per user (plus a warm-up)
#   PUSH_PARALLEL=256       radclient -p for the push logins
#   PUSH_TIMEOUT=30         radclient -t for the push logins: above the
#                           clients' hold_timeout (25s), as the bridge's
#                           docs ask of a NAS
#   QUIET_MAX=15 QUIET_CORES=0.3
#                           before each measurement, wait up to QUIET_MAX s
#                           for other processes to use under QUIET_CORES
#   PROFILE=0               1: perf record the bridge during the unknown-user
#                           and push runs (needs perf; prints the top symbols)
#   KEEP=0                  1: keep the temporary directory
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
RUNS=${RUNS:-3}
NOPUSH_REQUESTS=${NOPUSH_REQUESTS:-20000}
PASSWORD_REQUESTS=${PASSWORD_REQUESTS:-1000}
PARALLEL=${PARALLEL:-256}
PUSH_USERS=${PUSH_USERS:-2000}
PUSH_ROUNDS=${PUSH_ROUNDS:-10}
PUSH_PARALLEL=${PUSH_PARALLEL:-256}
PUSH_TIMEOUT=${PUSH_TIMEOUT:-30}
PROFILE=${PROFILE:-0}
KEEP=${KEEP:-0}
QUIET_MAX=${QUIET_MAX:-15}
QUIET_CORES=${QUIET_CORES:-0.3}
RADCLIENT_LIMIT=${RADCLIENT_LIMIT:-300} # seconds, per radclient run
FREERADIUS=${FREERADIUS:-/usr/sbin/freeradius}

STEP="checking prerequisites"
TMP=""
BRIDGE_PID="" FR_PID="" PHONES_PID="" PERF_PID=""

step() {
	STEP=$*
	printf '\n== %s\n' "$*" >&2
}
say() { printf '%s\n' "$*" >&2; }
die() {
	say "radius.sh: $*"
	exit 1
}

# stop PID: SIGTERM, then SIGKILL after 20 s. Only ever our own children.
stop() {
	local pid=$1 i
	[[ -n $pid ]] || return 0
	kill -TERM "$pid" 2>/dev/null || return 0
	for ((i = 0; i < 200; i++)); do
		kill -0 "$pid" 2>/dev/null || break
		sleep 0.1
	done
	kill -KILL "$pid" 2>/dev/null || true
	wait "$pid" 2>/dev/null || true
}

cleanup() {
	local rc=$?
	trap - EXIT INT TERM
	stop "$PERF_PID"
	stop "$PHONES_PID"
	stop "$BRIDGE_PID"
	stop "$FR_PID"
	if ((rc != 0)); then
		say ""
		say "radius.sh: FAILED during: $STEP (exit $rc)"
		if [[ -n $TMP ]]; then
			for f in bridge.log phones.log freeradius/log/radius.log radclient.out; do
				if [[ -s $TMP/$f ]]; then
					say "--- last lines of $TMP/$f:"
					tail -n 15 "$TMP/$f" >&2
				fi
			done
			say "(kept $TMP for inspection)"
		fi
	elif [[ -n $TMP && $KEEP != 1 ]]; then
		rm -rf "$TMP"
	elif [[ -n $TMP ]]; then
		say "kept $TMP"
	fi
	exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

# --- prerequisites ---------------------------------------------------------
command -v go >/dev/null || die "go not found on PATH"
command -v curl >/dev/null || die "curl not found: apt-get install -y curl"
command -v radclient >/dev/null || die "radclient not found: apt-get install -y freeradius-utils"
[[ -x $FREERADIUS ]] || die "$FREERADIUS not found: apt-get install -y freeradius (or set FREERADIUS=)"
command -v timeout >/dev/null || die "timeout (coreutils) not found"
[[ -r /proc/net/snmp && -r /proc/stat ]] || die "needs Linux /proc (UDP counters, CPU times)"
if [[ $PROFILE == 1 ]]; then
	command -v perf >/dev/null || die "PROFILE=1 needs perf (apt-get install -y linux-perf)"
fi
((PUSH_USERS >= PUSH_PARALLEL)) || die "PUSH_USERS ($PUSH_USERS) must be at least PUSH_PARALLEL ($PUSH_PARALLEL)"
((PUSH_USERS <= 65536)) || die "PUSH_USERS is at most 65536"
HZ=$(getconf CLK_TCK)

TMP=$(mktemp -d "${TMPDIR:-/tmp}/bridge-radius-bench.XXXXXX")
BIN=$TMP/bin
mkdir -p "$BIN"

step "building the bridge and the bench helpers (go build)"
(
	cd "$ROOT"
	go build -o "$BIN/bridge" ./cmd/bridge
	go build -o "$BIN/phones" ./bench/radius/phones
	go build -o "$BIN/benchtool" ./bench/radius/benchtool
) || die "go build failed"

step "picking free loopback ports"
mapfile -t PORTS < <("$BIN/benchtool" ports 4 || true)
((${#PORTS[@]} == 4)) || die "no free loopback ports"
PUB=${PORTS[0]} ADM=${PORTS[1]} RAD=${PORTS[2]} FRPORT=${PORTS[3]}
say "bridge: public 127.0.0.1:$PUB, admin 127.0.0.1:$ADM, RADIUS udp/127.0.0.1:$RAD; FreeRADIUS udp/127.0.0.1:$FRPORT"

# --- inputs ------------------------------------------------------------------
step "writing configs and request files into $TMP"
SECRET=$(od -An -N16 -tx1 /dev/urandom | tr -d ' \n')
umask 077
printf '%s\n' "$SECRET" >"$TMP/radius.secret"
od -An -N32 -tx1 /dev/urandom | tr -d ' \n' >"$TMP/admin.token"
PASSWORD="correct horse battery staple"
NPW=10 # local users with a password, for the wrong-password path

# bridge_config FILE DIRECTORY [READ_BUFFER]
bridge_config() {
	local rb=""
	[[ -n ${3:-} ]] && rb="  read_buffer: $3"
	cat >"$1" <<EOF
# Written by bench/radius.sh. dev_mode: no KEK to manage for a throwaway run.
dev_mode: true
data_dir: $TMP/data
log: {level: warn}
http:
  public: {listen: 127.0.0.1:$PUB, allow_plain_http: true}
  admin: {listen: 127.0.0.1:$ADM, allow_plain_http: true}
  admin_api: {token_file: $TMP/admin.token}
passwords:
  # The cheapest the local directory accepts: the wrong-password path is
  # bound by it all the same.
  argon2id: {time: 1, memory_kib: 19456, threads: 1}
push:
  # Lifted so that the limits are not what is measured: every phone gets
  # PUSH_ROUNDS pushes within a minute, and no back-off applies.
  max_per_hour: 1000000
  max_per_ip_minute: 1000000
  backoff_base: 1ms
  backoff_max: 1ms
directories:
  - {name: local, type: local}
  - {name: push-only, type: none, identities: local}
radius:
  listen: 127.0.0.1:$RAD
  accounting_listen: "off"
$rb
  clients:
    - name: bench
      address: 127.0.0.1
      secret_file: $TMP/radius.secret
      directory: $2
      message_authenticator: always
      wait: hold
      hold_timeout: 25s
      # Lifted as the push limits are: path b sends 100 wrong passwords
      # per user, and each must reach the directory to be measured.
      failures_per_user: 100000
      failures_per_ip: 100000
      failures_per_client: 100000
EOF
}
bridge_config "$TMP/none.yaml" push-only
bridge_config "$TMP/none-64k.yaml" push-only 65536
bridge_config "$TMP/local.yaml" local

# Users: NPW with a password (wrong-password path), PUSH_USERS without
# (push path, first factor by the none directory).
{
	echo "name,password"
	for ((i = 1; i <= NPW; i++)); do printf 'pw%02d,%s\n' "$i" "$PASSWORD"; done
	for ((i = 1; i <= PUSH_USERS; i++)); do printf 'push%05d,\n' "$i"; done
} >"$TMP/users.csv"
for ((i = 1; i <= PUSH_USERS; i++)); do printf 'push%05d\n' "$i"; done >"$TMP/push-users.txt"

# requests FILE COUNT USER_FORMAT USERS PASSWORD ROUND: radclient input,
# entries separated by blank lines; user i is USER_FORMAT of (i % USERS)+1;
# every request has its own Calling-Station-Id (10.ROUND.x.y).
requests() {
	awk -v n="$2" -v fmt="$3" -v users="$4" -v pw="$5" -v round="$6" 'BEGIN {
		for (i = 0; i < n; i++) {
			printf "User-Name = \"" fmt "\"\n", (users > 0 ? i % users : i) + 1
			printf "User-Password = \"%s\"\n", pw
			print "NAS-IP-Address = 127.0.0.1"
			print "NAS-Identifier = \"bench\""
			printf "Calling-Station-Id = \"10.%d.%d.%d\"\n", round % 256, int(i / 256) % 256, i % 256
			print "Message-Authenticator = 0x00"
			print ""
		}
	}' >"$1"
}
requests "$TMP/unknown.txt" "$NOPUSH_REQUESTS" "nouser%d" 0 "wrong password" 200
requests "$TMP/wrongpw.txt" "$PASSWORD_REQUESTS" "pw%02d" "$NPW" "wrong password" 201
for ((r = 0; r <= PUSH_ROUNDS; r++)); do
	requests "$TMP/push-$r.txt" "$PUSH_USERS" "push%05d" "$PUSH_USERS" "push" "$r"
done
requests "$TMP/fr-probe.txt" 1 "pw%02d" "$NPW" "$PASSWORD" 250

# FreeRADIUS: a minimal PAP server. reject_delay = 0 (the default 1 s would
# make it throttle rejects; the bridge answers at once), the client requires
# Message-Authenticator as the bridge's does, and the socket asks for the
# bridge's receive buffer.
FRDIR=$TMP/freeradius
mkdir -p "$FRDIR/log" "$FRDIR/run"
{
	for ((i = 1; i <= NPW; i++)); do printf 'pw%02d\tCleartext-Password := "%s"\n' "$i" "$PASSWORD"; done
} >"$FRDIR/users"
cat >"$FRDIR/radiusd.conf" <<EOF
prefix = /usr
exec_prefix = /usr
sysconfdir = /etc
localstatedir = /var
sbindir = \${exec_prefix}/sbin
logdir = $FRDIR/log
raddbdir = $FRDIR
radacctdir = \${logdir}/radacct
name = freeradius
confdir = \${raddbdir}
modconfdir = \${confdir}
run_dir = $FRDIR/run
db_dir = \${raddbdir}
libdir = /usr/lib/freeradius
pidfile = \${run_dir}/\${name}.pid
max_request_time = 30
cleanup_delay = 5
max_requests = 262144
hostname_lookups = no
log {
	destination = files
	file = \${logdir}/radius.log
	auth = no
	auth_badpass = no
	auth_goodpass = no
}
security {
	allow_core_dumps = no
	max_attributes = 200
	reject_delay = 0
	status_server = yes
}
proxy_requests = no
client bench {
	ipaddr = 127.0.0.1
	secret = $SECRET
	require_message_authenticator = yes
}
# Debian's defaults.
thread pool {
	start_servers = 5
	max_servers = 32
	min_spare_servers = 3
	max_spare_servers = 10
	max_requests_per_server = 0
	max_queue_size = 65536
}
modules {
	pap {
	}
	files {
		filename = \${confdir}/users
	}
}
server default {
	listen {
		type = auth
		ipaddr = 127.0.0.1
		port = $FRPORT
		# The bridge's default; FreeRADIUS's (the kernel's, 208 KiB here)
		# drops packets under radclient -p 256.
		recv_buff = 4194304
	}
	authorize {
		files
		pap
	}
	authenticate {
		Auth-Type PAP {
			pap
		}
	}
}
EOF

# --- measuring helpers ---------------------------------------------------------

rcvbuf_errors() {
	awk '/^Udp:/ { if (++n == 1) { for (i = 1; i <= NF; i++) if ($i == "RcvbufErrors") c = i } else print $c }' /proc/net/snmp
}
# socket_drops PORT: packets the kernel dropped on the UDP socket bound to
# 127.0.0.1:PORT (the drops column of /proc/net/udp), 0 if none is bound.
socket_drops() {
	awk -v a="$(printf '0100007F:%04X' "$1")" '$2 == a { print $NF; found = 1 } END { if (!found) print 0 }' /proc/net/udp
}
busy_ticks() { awk '/^cpu / { print $2 + $3 + $4 + $7 + $8 + $9 }' /proc/stat; }
pid_ticks() {
	local t=0 p
	for p in "$@"; do
		[[ -n $p && -r /proc/$p/stat ]] || continue
		t=$((t + $(awk '{ print $14 + $15 }' "/proc/$p/stat")))
	done
	echo "$t"
}
calc() { awk "BEGIN { printf \"%.${2:-0}f\", $1 }"; }
median() { printf '%s\n' "$@" | sort -g | awk '{ a[NR] = $1 } END { if (NR % 2) print a[(NR + 1) / 2]; else print (a[NR / 2] + a[NR / 2 + 1]) / 2 }'; }
scrape() { curl -sf "http://127.0.0.1:$ADM/metrics" >"$1" || die "scraping the bridge's /metrics failed"; }
delta() { "$BIN/benchtool" delta "$@"; }
mark_log() { LOG_MARK=$(wc -l <"$TMP/bridge.log"); }
# log_problems: WARN and ERROR lines of the bridge's log since mark_log.
log_problems() { tail -n +$((LOG_MARK + 1)) "$TMP/bridge.log" | grep -E 'level=(WARN|ERROR)' || true; }

# wait_quiet: the machine is shared; wait (at most QUIET_MAX seconds) until
# processes that are not ours use less than QUIET_CORES, so that a run does
# not start in the middle of someone else's burst. Sets QUIET_OTHERS.
wait_quiet() {
	local i b0 b1 o0 o1
	for ((i = 0; i < QUIET_MAX; i++)); do
		b0=$(busy_ticks) o0=$(pid_ticks "$BRIDGE_PID" "$FR_PID" "$PHONES_PID")
		sleep 1
		b1=$(busy_ticks) o1=$(pid_ticks "$BRIDGE_PID" "$FR_PID" "$PHONES_PID")
		QUIET_OTHERS=$(calc "(($b1 - $b0) - ($o1 - $o0)) / $HZ" 2)
		(($(calc "$QUIET_OTHERS < $QUIET_CORES ? 1 : 0"))) && return 0
	done
	say "(other processes still use $QUIET_OTHERS cores after ${QUIET_MAX}s; measuring anyway)"
}

# radrun FILE PORT PARALLEL TIMEOUT: one radclient run. Sets R_ELAPSED (s),
# R_ACC, R_REJ, R_LOST, R_CLIENT (radclient CPU s).
radrun() {
	local rc=0 real user sys TIMEFORMAT='%R %U %S'
	{ time timeout "$RADCLIENT_LIMIT" radclient -q -s -t "$4" -p "$3" -f "$1" "127.0.0.1:$2" auth "$SECRET" \
		>"$TMP/radclient.out" 2>&1; } 2>"$TMP/radclient.time" || rc=$?
	((rc != 124)) || die "radclient did not finish within ${RADCLIENT_LIMIT}s ($1 to port $2)"
	((rc == 0 || rc == 1)) || die "radclient failed (exit $rc): $(head -c 500 "$TMP/radclient.out")"
	read -r real user sys <"$TMP/radclient.time"
	R_ELAPSED=$real
	R_CLIENT=$(calc "$user + $sys" 2)
	summary() { awk -F: -v k="$1" '$1 ~ k { gsub(/[ \t]/, "", $2); print $2 }' "$TMP/radclient.out"; }
	R_ACC=$(summary Accepted) R_REJ=$(summary Rejected) R_LOST=$(summary Lost)
	[[ -n $R_ACC && -n $R_REJ && -n $R_LOST ]] || die "no summary in radclient's output: $(head -c 500 "$TMP/radclient.out")"
	local other='^[[:space:]]*(Packet summary:|Accepted|Rejected|Lost|Passed filter|Failed filter)'
	if grep -vqE "$other" "$TMP/radclient.out"; then
		say "radclient said: $(grep -vE "$other" "$TMP/radclient.out" | sort | uniq -c | head -5)"
	fi
}

# measure LABEL FILE PORT PARALLEL TIMEOUT SERVER_PIDS...: radrun, with the
# UDP drops and the CPU accounting around it. Sets M_RATE (answered
# requests a second), M_RCVBUF (RcvbufErrors, whole machine), M_SOCKDROPS
# (the server socket's drops) and M_SERVER, M_CLIENT, M_OTHER (cores used by
# the server, radclient and processes that are not part of the benchmark).
measure() {
	local label=$1 file=$2 port=$3 p=$4 t=$5
	shift 5
	local rb0 rb1 sd0 sd1 busy0 busy1 own0 own1
	rb0=$(rcvbuf_errors) sd0=$(socket_drops "$port") busy0=$(busy_ticks) own0=$(pid_ticks "$@")
	radrun "$file" "$port" "$p" "$t"
	rb1=$(rcvbuf_errors) sd1=$(socket_drops "$port") busy1=$(busy_ticks) own1=$(pid_ticks "$@")
	M_RCVBUF=$((rb1 - rb0)) M_SOCKDROPS=$((sd1 - sd0))
	M_RATE=$(calc "($R_ACC + $R_REJ) / $R_ELAPSED")
	M_SERVER=$(calc "($own1 - $own0) / $HZ / $R_ELAPSED" 2)
	M_CLIENT=$(calc "$R_CLIENT / $R_ELAPSED" 2)
	M_OTHER=$(calc "(($busy1 - $busy0) - ($own1 - $own0)) / $HZ / $R_ELAPSED - $M_CLIENT" 2)
	M_OTHER=$(calc "$M_OTHER < 0.005 ? 0 : $M_OTHER" 2)
	say "$(printf '%-10s %6d req in %6.2fs = %6d/s  accept %d reject %d lost %d  RcvbufErrors +%d (server socket +%d)  cores: server %s radclient %s others %s' \
		"$label" "$((R_ACC + R_REJ + R_LOST))" "$R_ELAPSED" "$M_RATE" "$R_ACC" "$R_REJ" "$R_LOST" "$M_RCVBUF" "$M_SOCKDROPS" "$M_SERVER" "$M_CLIENT" "$M_OTHER")"
}

# bridge_quantiles BEFORE AFTER CODE: sets Q_P50 Q_P90 Q_P99 Q_COUNT (ms).
bridge_quantiles() {
	local out
	out=$("$BIN/benchtool" hist bridge_radius_request_duration_seconds "code=$3" "$1" "$2") || die "reading the duration histogram failed"
	Q_COUNT=$(sed -n 's/^count=//p' <<<"$out") Q_P50=$(sed -n 's/^p50_ms=//p' <<<"$out")
	Q_P90=$(sed -n 's/^p90_ms=//p' <<<"$out") Q_P99=$(sed -n 's/^p99_ms=//p' <<<"$out")
}

RESULTS=$TMP/results.tsv
printf 'path\tserver\trun\trate\telapsed\taccept\treject\tlost\trcvbuf\tserver_cores\tclient_cores\tother_cores\tp50\tp99\tretrans\tsockdrops\tdecided\n' >"$RESULTS"
# record PATH SERVER RUN [P50 P99 RETRANSMITS DECIDED_RATE]
record() {
	printf '%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n' "$1" "$2" "$3" "$M_RATE" "$R_ELAPSED" "$R_ACC" "$R_REJ" "$R_LOST" \
		"$M_RCVBUF" "$M_SERVER" "$M_CLIENT" "$M_OTHER" "${4:--}" "${5:--}" "${6:--}" "$M_SOCKDROPS" "${7:--}" >>"$RESULTS"
}
PROBLEMS=$TMP/log-problems.txt
: >"$PROBLEMS"

# bridge_run PATH RUN FILE: one measured radclient run against the bridge,
# with its latency histogram, retransmissions and decisions from /metrics.
bridge_run() {
	local path=$1 run=$2 file=$3 m0=$TMP/$1-$2-0.prom m1=$TMP/$1-$2-1.prom
	wait_quiet
	scrape "$m0"
	mark_log
	measure bridge "$file" "$RAD" "$PARALLEL" 2 "$BRIDGE_PID"
	log_problems >>"$PROBLEMS"
	scrape "$m1"
	bridge_quantiles "$m0" "$m1" Access-Reject
	record "$path" bridge "$run" "$Q_P50" "$Q_P99" "$(delta bridge_radius_retransmits_total "$m0" "$m1")" \
		"$(calc "$(delta bridge_radius_decisions_total "$m0" "$m1") / $R_ELAPSED")"
}
# fr_run PATH RUN FILE: the same against FreeRADIUS.
fr_run() {
	wait_quiet
	measure freeradius "$3" "$FRPORT" "$PARALLEL" 2 "$FR_PID"
	record "$1" freeradius "$2"
}

start_bridge() {
	local cfg=$1 i
	"$BIN/bridge" serve --config "$cfg" >>"$TMP/bridge.log" 2>&1 &
	BRIDGE_PID=$!
	for ((i = 0; i < 300; i++)); do
		kill -0 "$BRIDGE_PID" 2>/dev/null || {
			BRIDGE_PID=""
			die "the bridge exited at start ($cfg)"
		}
		if curl -sf -o /dev/null "http://127.0.0.1:$ADM/readyz" &&
			curl -sf "http://127.0.0.1:$ADM/metrics" | grep -q '^bridge_radius_receive_buffer_bytes'; then
			RCVBUF_GOT=$(curl -sf "http://127.0.0.1:$ADM/metrics" |
				awk '/^bridge_radius_receive_buffer_bytes\{socket="authentication"\}/ { printf "%d", $2 }')
			say "bridge up (pid $BRIDGE_PID, $(basename "$cfg"), RADIUS receive buffer the kernel gave: $RCVBUF_GOT bytes)"
			return
		fi
		sleep 0.1
	done
	die "the bridge did not become ready in 30 s ($cfg)"
}
stop_bridge() {
	stop "$BRIDGE_PID"
	BRIDGE_PID=""
}

perf_start() {
	[[ $PROFILE == 1 ]] || return 0
	perf record -F 499 -g -p "$BRIDGE_PID" -o "$TMP/perf-$1.data" >/dev/null 2>&1 &
	PERF_PID=$!
	sleep 0.5
}
perf_stop() {
	[[ $PROFILE == 1 && -n $PERF_PID ]] || return 0
	kill -INT "$PERF_PID" 2>/dev/null || true
	wait "$PERF_PID" 2>/dev/null || true
	PERF_PID=""
	{
		echo "top symbols, self time:"
		perf report -i "$TMP/perf-$1.data" --no-children --sort sym --stdio 2>/dev/null | grep -E '^ +[0-9]' | head -12
		echo "inclusive time (children) of selected frames:"
		perf report -i "$TMP/perf-$1.data" --children --sort sym --stdio 2>/dev/null | grep -E '^ +[0-9]' |
			grep -E 'bridge-idp/bridge/|crypto/ecdsa\.Verify$|crypto/ed25519\.PrivateKey\.Sign$|runtime\.gcBgMarkWorker$|net/http\.\(\*conn\)\.serve$|_sqlite3VList' | head -30
	} >"$TMP/perf-$1.txt" || true
	say "CPU profile of the bridge ($1, perf, cpu-clock):"
	cat "$TMP/perf-$1.txt" >&2
}

# --- FreeRADIUS --------------------------------------------------------------
step "starting FreeRADIUS ($FREERADIUS -d $FRDIR -f)"
"$FREERADIUS" -C -d "$FRDIR" >"$TMP/freeradius-check.log" 2>&1 ||
	die "FreeRADIUS rejects the generated config: $(tail -n 5 "$TMP/freeradius-check.log")"
"$FREERADIUS" -d "$FRDIR" -f >>"$TMP/freeradius.out" 2>&1 &
FR_PID=$!
for ((i = 0; ; i++)); do
	kill -0 "$FR_PID" 2>/dev/null || { FR_PID=""; die "FreeRADIUS exited at start: $(tail -n 5 "$FRDIR/log/radius.log" 2>/dev/null)"; }
	if radclient -q -s -r 1 -t 1 -f "$TMP/fr-probe.txt" "127.0.0.1:$FRPORT" auth "$SECRET" 2>/dev/null | grep -q 'Accepted *: 1'; then
		break
	fi
	((i < 20)) || die "FreeRADIUS does not accept the probe login"
	sleep 0.5
done
say "FreeRADIUS up (pid $FR_PID, $("$FREERADIUS" -v 2>/dev/null | head -1 | sed 's/,.*//'))"

# --- the bridge --------------------------------------------------------------
step "starting the bridge (none directory) and importing $((NPW + PUSH_USERS)) users"
start_bridge "$TMP/none.yaml"
"$BIN/bridge" users import "$TMP/users.csv" --config "$TMP/none.yaml" >"$TMP/import.out" 2>&1 ||
	die "bridge users import failed: $(tail -n 5 "$TMP/import.out")"
say "$(tail -n 1 "$TMP/import.out")"

LOAD_START=$(cut -d' ' -f1-3 /proc/loadavg)
REVISION=$(git -C "$ROOT" describe --always --dirty 2>/dev/null || echo unknown)

# --- a: unknown user, no password hashing ------------------------------------------
step "path a: reject of an unknown user, $NOPUSH_REQUESTS requests x $RUNS runs, interleaved (radclient -p $PARALLEL -t 2)"
for ((run = 1; run <= RUNS; run++)); do
	[[ $run == 1 ]] && perf_start unknown-user
	bridge_run unknown "$run" "$TMP/unknown.txt"
	[[ $run == 1 ]] && perf_stop unknown-user
	fr_run unknown "$run" "$TMP/unknown.txt"
done

# --- push --------------------------------------------------------------------
step "push: enrolling $PUSH_USERS simulated phones (admin API + reference authenticator)"
mark_log
"$BIN/phones" -admin "http://127.0.0.1:$ADM" -token-file "$TMP/admin.token" -users "$TMP/push-users.txt" \
	-addr-file "$TMP/phones.addr" -enroll-workers 8 >>"$TMP/phones.log" 2>&1 &
PHONES_PID=$!
ENROLL_T0=$(date +%s.%N)
for ((i = 0; ; i++)); do
	kill -0 "$PHONES_PID" 2>/dev/null || { PHONES_PID=""; die "the phone simulator exited: $(tail -n 3 "$TMP/phones.log")"; }
	if [[ -s $TMP/phones.addr ]] && curl -sf -o /dev/null "http://$(cat "$TMP/phones.addr")/ready"; then
		break
	fi
	((i < 6000)) || die "the phones were not enrolled within 10 minutes"
	sleep 0.1
done
PHONES=http://$(cat "$TMP/phones.addr")
ENROLL_S=$(calc "$(date +%s.%N) - $ENROLL_T0" 1)
log_problems >>"$PROBLEMS"
say "$(tail -n 1 "$TMP/phones.log")"

step "push: warm-up round ($PUSH_USERS logins, not counted)"
measure warm-up "$TMP/push-0.txt" "$RAD" "$PUSH_PARALLEL" "$PUSH_TIMEOUT" "$BRIDGE_PID" "$PHONES_PID"
curl -sf "$PHONES/stats?reset=1" >/dev/null

step "push: $PUSH_ROUNDS rounds of $PUSH_USERS logins (one per user per round), wait: hold, radclient -p $PUSH_PARALLEL -t $PUSH_TIMEOUT"
wait_quiet
scrape "$TMP/push-0.prom"
mark_log
PUSH_ELAPSED=0 PUSH_ACC=0 PUSH_REJ=0 PUSH_LOST=0 PUSH_CLIENT=0
rb0=$(rcvbuf_errors) sd0=$(socket_drops "$RAD") busy0=$(busy_ticks) br0=$(pid_ticks "$BRIDGE_PID") ph0=$(pid_ticks "$PHONES_PID")
perf_start push
for ((r = 1; r <= PUSH_ROUNDS; r++)); do
	measure "round $r" "$TMP/push-$r.txt" "$RAD" "$PUSH_PARALLEL" "$PUSH_TIMEOUT" "$BRIDGE_PID" "$PHONES_PID"
	PUSH_ELAPSED=$(calc "$PUSH_ELAPSED + $R_ELAPSED" 3)
	PUSH_CLIENT=$(calc "$PUSH_CLIENT + $R_CLIENT" 2)
	PUSH_ACC=$((PUSH_ACC + R_ACC)) PUSH_REJ=$((PUSH_REJ + R_REJ)) PUSH_LOST=$((PUSH_LOST + R_LOST))
	PUSH_ROUND_RATES+=("$M_RATE")
done
perf_stop push
rb1=$(rcvbuf_errors) sd1=$(socket_drops "$RAD") busy1=$(busy_ticks) br1=$(pid_ticks "$BRIDGE_PID") ph1=$(pid_ticks "$PHONES_PID")
log_problems >>"$PROBLEMS"
scrape "$TMP/push-1.prom"
PHONE_STATS=$(curl -sf "$PHONES/stats") || die "reading the phone simulator's stats failed"
phone() { sed -n "s/^$1=//p" <<<"$PHONE_STATS"; }
bridge_quantiles "$TMP/push-0.prom" "$TMP/push-1.prom" Access-Accept
PUSH_P50=$Q_P50 PUSH_P90=$Q_P90 PUSH_P99=$Q_P99
PUSH_RATE=$(calc "$PUSH_ACC / $PUSH_ELAPSED")
PUSH_RCVBUF=$((rb1 - rb0)) PUSH_SOCKDROPS=$((sd1 - sd0))
PUSH_BRIDGE_CORES=$(calc "($br1 - $br0) / $HZ / $PUSH_ELAPSED" 2)
PUSH_PHONES_CORES=$(calc "($ph1 - $ph0) / $HZ / $PUSH_ELAPSED" 2)
PUSH_CLIENT_CORES=$(calc "$PUSH_CLIENT / $PUSH_ELAPSED" 2)
PUSH_OTHER=$(calc "(($busy1 - $busy0) - ($br1 - $br0) - ($ph1 - $ph0)) / $HZ / $PUSH_ELAPSED - $PUSH_CLIENT_CORES" 2)
PUSH_OTHER=$(calc "$PUSH_OTHER < 0.005 ? 0 : $PUSH_OTHER" 2)
PUSH_BRIDGE_MS=$(calc "($br1 - $br0) * 1000 / $HZ / ($PUSH_ACC + $PUSH_REJ)" 2)
PUSH_PHONES_MS=$(calc "($ph1 - $ph0) * 1000 / $HZ / ($PUSH_ACC + $PUSH_REJ)" 2)
PUSH_JOINED=$(delta bridge_push_starts_total result=joined "$TMP/push-0.prom" "$TMP/push-1.prom")
PUSH_RETRANS=$(delta bridge_radius_retransmits_total "$TMP/push-0.prom" "$TMP/push-1.prom")
"$BIN/benchtool" changes bridge_ "$TMP/push-0.prom" "$TMP/push-1.prom" |
	grep -E 'push_starts|challenges_closed|device_refusals|radius_(decisions|dropped|retrans)' >"$TMP/push-counters.txt" || true
say "push: $PUSH_ACC accepted, $PUSH_REJ rejected, $PUSH_LOST lost in ${PUSH_ELAPSED}s = $PUSH_RATE logins/s"
say "bridge counters during the push rounds:"
sed 's/^/  /' "$TMP/push-counters.txt" >&2
say "phones: $(tr '\n' ' ' <<<"$PHONE_STATS")"
stop "$PHONES_PID"
PHONES_PID=""

# --- receive buffer ------------------------------------------------------------
step "receive buffer: path a with radius.read_buffer 65536, then the default again"
stop_bridge
start_bridge "$TMP/none-64k.yaml"
RB_SMALL_GOT=$RCVBUF_GOT
bridge_run rcvbuf-64k 1 "$TMP/unknown.txt"
stop_bridge
start_bridge "$TMP/none.yaml"
RB_DEFAULT_GOT=$RCVBUF_GOT
bridge_run rcvbuf-default 1 "$TMP/unknown.txt"

# --- b: wrong password, argon2id ---------------------------------------------------
step "path b: wrong password (local directory, argon2id t=1 m=19456 KiB p=1), $PASSWORD_REQUESTS requests x $RUNS runs, interleaved"
stop_bridge
start_bridge "$TMP/local.yaml"
for ((run = 1; run <= RUNS; run++)); do
	bridge_run wrongpw "$run" "$TMP/wrongpw.txt"
	fr_run wrongpw "$run" "$TMP/wrongpw.txt"
done
stop_bridge
FR_ERRORS=$(grep -c -E ': (Error|ERROR)' "$FRDIR/log/radius.log" || true)
stop "$FR_PID"
FR_PID=""

# --- report --------------------------------------------------------------------
step "results"
col() { awk -F'\t' -v p="$1" -v s="$2" -v c="$3" 'NR == 1 { for (i = 1; i <= NF; i++) if ($i == c) k = i; next } $1 == p && $2 == s { print $k }' "$RESULTS"; }
ratio_median() { # PATH
	local b f ratios=() i
	mapfile -t b < <(col "$1" bridge rate)
	mapfile -t f < <(col "$1" freeradius rate)
	for i in "${!b[@]}"; do ratios+=("$(calc "${b[i]} / ${f[i]}" 3)"); done
	median "${ratios[@]}"
}

{
	echo
	echo "### RADIUS benchmark, $(date -u +%Y-%m-%d) (revision $REVISION; $(nproc) cores; load average at start $LOAD_START)"
	echo
	echo "No-push decisions, radclient -q -s -t 2 -p $PARALLEL: requests answered per second (elapsed wall time of the radclient run)."
	echo "Drops: RcvbufErrors of the whole machine, and the server socket's own (/proc/net/udp). Cores: CPU used during the run by"
	echo "the server, by radclient, and by processes that are not part of the benchmark (\"others\": the machine is shared)."
	echo
	echo "| path | run | bridge req/s | FreeRADIUS req/s | bridge / FreeRADIUS | lost (bridge, FR) | RcvbufErrors + (bridge run, FR run) | server socket drops (bridge, FR) | bridge p50 / p99 ms | bridge decided/s | retransmits at the bridge | cores: server (bridge, FR) | cores: radclient (bridge, FR) | cores: others (bridge, FR) |"
	echo "| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |"
	for path in unknown wrongpw; do
		case $path in
		unknown) name="a. unknown user, $NOPUSH_REQUESTS req" ;;
		wrongpw) name="b. wrong password, argon2id, $PASSWORD_REQUESTS req" ;;
		esac
		awk -F'\t' -v p="$path" -v name="$name" '
			NR == 1 { next }
			$1 == p && $2 == "bridge" { b[$3] = $0 }
			$1 == p && $2 == "freeradius" { f[$3] = $0 }
			END {
				for (r = 1; r in b; r++) {
					split(b[r], x, "\t"); split(f[r], y, "\t")
					printf "| %s | %d | %d | %d | %.2f | %d, %d | %d, %d | %d, %d | %s / %s | %s | %s | %s, %s | %s, %s | %s, %s |\n", name, r, x[4], y[4], x[4] / y[4], x[8], y[8], x[9], y[9], x[16], y[16], x[13], x[14], x[17], x[15], x[10], y[10], x[11], y[11], x[12], y[12]
				}
			}' "$RESULTS"
		echo "| **$name: median** | | **$(median $(col "$path" bridge rate))** | **$(median $(col "$path" freeradius rate))** | **$(calc "$(ratio_median "$path")" 2)** (median of the run ratios) | | | | | | | | | |"
	done
	echo
	echo "Push-approved logins end to end: wait: hold, none directory, $PUSH_USERS users with one simulated phone each (enrolled in ${ENROLL_S}s),"
	echo "$PUSH_ROUNDS rounds of one login per user (one radclient run per round: no user has two logins at once), radclient -p $PUSH_PARALLEL -t $PUSH_TIMEOUT."
	echo "Bridge latency is interpolated within the buckets of bridge_radius_request_duration_seconds; the phone's is from the long-poll returning a"
	echo "challenge to the bridge accepting the approval."
	echo
	echo "| logins | Access-Accept | other answers | lost | logins/s | per round | bridge p50 / p90 / p99 ms | phone p50 / p90 / p99 ms | RcvbufErrors + (socket) | retransmits | joined | cores: bridge, phones, radclient, others | CPU per login: bridge, phone |"
	echo "| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |"
	echo "| $((PUSH_ACC + PUSH_REJ + PUSH_LOST)) | $PUSH_ACC | $PUSH_REJ | $PUSH_LOST | **$PUSH_RATE** | $(printf '%s ' "${PUSH_ROUND_RATES[@]}" | sed 's/ $//; s/ /, /g') | $PUSH_P50 / $PUSH_P90 / $PUSH_P99 | $(phone phone_p50_ms) / $(phone phone_p90_ms) / $(phone phone_p99_ms) | $PUSH_RCVBUF ($PUSH_SOCKDROPS) | $PUSH_RETRANS | $PUSH_JOINED | $PUSH_BRIDGE_CORES, $PUSH_PHONES_CORES, $PUSH_CLIENT_CORES, $PUSH_OTHER | $PUSH_BRIDGE_MS ms, $PUSH_PHONES_MS ms |"
	echo
	echo "Phones: answered $(phone answered), answer errors $(phone answer_errors), poll errors $(phone poll_errors), refused $(phone refused)$(phone last_error | sed 's/^/, last error: /');"
	echo "enrollments retried after a server error: $(phone enroll_retries)."
	echo
	echo "UDP receive buffer: path a, one run each, the bridge restarted between them:"
	echo
	echo "| radius.read_buffer | kernel gave | req/s | lost | RcvbufErrors + | socket drops | retransmits at the bridge | bridge p50 / p99 ms | cores: others |"
	echo "| --- | --- | --- | --- | --- | --- | --- | --- | --- |"
	awk -F'\t' -v small="$RB_SMALL_GOT" -v def="$RB_DEFAULT_GOT" '
		$1 == "rcvbuf-64k" { printf "| 65536 | %s | %d | %d | %d | %d | %s | %s / %s | %s |\n", small, $4, $8, $9, $16, $15, $13, $14, $12 }
		$1 == "rcvbuf-default" { printf "| default (4194304) | %s | %d | %d | %d | %d | %s | %s / %s | %s |\n", def, $4, $8, $9, $16, $15, $13, $14, $12 }' "$RESULTS"
	echo
	echo "FreeRADIUS log lines with errors: $FR_ERRORS."
	if [[ -s $PROBLEMS ]]; then
		echo "Bridge log, WARN and ERROR lines during the runs and the enrolment ($(wc -l <"$PROBLEMS"); first 5):"
		echo
		head -n 5 "$PROBLEMS" | sed 's/^/    /'
	else
		echo "Bridge log: no WARN or ERROR lines during the runs."
	fi
} | tee "$TMP/results.md"
