#!/usr/bin/env bash
# hack/bench-net.sh — throughput and start-up cost of sandy's slirp4netns
# network, side by side with Debian's rootlesskit 1.1.0 in the same run.
#
# Rows (iperf3 -t $DUR, median of the 1-second intervals, Gbit/s):
#   loopback floor            iperf3 on the host's 127.0.0.1, no namespace
#   container -> host         through slirp4netns at MTU 1500 and 65520 (client
#                             inside, server on the host's 127.0.0.1 via 10.0.2.2)
#   host -> container         -p 127.0.0.1:PORT:5201 through the builtin and the
#                             slirp4netns port drivers (client on the host bound
#                             to 127.0.0.2, so the server's "Accepted connection
#                             from" line shows whether the client's address
#                             was kept)
#   start-up                  median time to a ready network, and what it adds
#                             to creating the namespaces alone (--network=none)
#
# sandy's side is the slirp package driven by slirp/internal/slirpbench, which
# stands in for the sandy binary (same hidden subcommands, same code path as
# `sandy run -p`): the benchmark needs no other part of sandy. The "container"
# is `unshare --user --map-root-user --net --pid --fork sleep`: pid 1 of its
# own pid namespace, as sandy's init (slirp refuses the builtin port driver
# for a container in the caller's pid namespace).
#
# Run as root (it builds slirpbench and re-runs itself as $SANDY_TEST_USER,
# default sandytest) or as any unprivileged user with Go in PATH.
# Servers listen on 127.0.0.0/8 only. Needs iperf3, jq, slirp4netns,
# util-linux; rootlesskit rows are skipped when it is missing
# (apt-get install rootlesskit).
set -euo pipefail

DUR=${DUR:-5}
REPEAT=${REPEAT:-3}
RUNS=${RUNS:-15}
TEST_USER=${SANDY_TEST_USER:-sandytest}
here=$(cd "$(dirname "$0")" && pwd)

if [ -z "${SLIRPBENCH:-}" ] && [ "$(id -u)" -eq 0 ]; then
	# As root, install what the benchmark needs first (and the test user).
	SANDY_EXTRA_PKGS="iperf3 jq rootlesskit" bash "$here/setup.sh" >/dev/null
	export PATH=/usr/local/go/bin:$PATH
fi
if [ -z "${SLIRPBENCH:-}" ]; then
	out=$(mktemp -d /tmp/sandy-bench-XXXXXX)
	chmod 755 "$out"
	(cd "$here/.." && CGO_ENABLED=0 go build -o "$out/slirpbench" ./slirp/internal/slirpbench)
	cp "$0" "$out/bench-net.sh"
	export SLIRPBENCH=$out/slirpbench
	if [ "$(id -u)" -eq 0 ]; then
		exec runuser -u "$TEST_USER" -- env SLIRPBENCH="$SLIRPBENCH" DUR="$DUR" REPEAT="$REPEAT" RUNS="$RUNS" PATH="$PATH" bash "$out/bench-net.sh" "$@"
	fi
fi
[ "$(id -u)" -ne 0 ] || { echo "bench-net.sh: refusing to benchmark as root" >&2; exit 1; }
for b in iperf3 jq slirp4netns unshare nsenter ss; do
	command -v "$b" >/dev/null || { echo "bench-net.sh: $b not in PATH (apt-get install iperf3 jq slirp4netns util-linux iproute2)" >&2; exit 1; }
done
have_rk=true
command -v rootlesskit >/dev/null || { have_rk=false; echo "bench-net.sh: rootlesskit not in PATH, its rows are skipped (apt-get install rootlesskit)" >&2; }

work=$(mktemp -d /tmp/bench-net-XXXXXX)
pids=()
cleanup() {
	for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
	wait 2>/dev/null || true
	rm -rf "$work"
}
trap cleanup EXIT

port=25200
free_port() { # sets $port to the next free TCP port on 127.0.0.1
	port=$((port + 1))
	while ss -Hltn "sport = :$port" | grep -q .; do port=$((port + 1)); done
}
wait_listen() { # wait_listen PORT [LOG...]: until something listens on the host
	local port=$1; shift
	for _ in $(seq 750); do ss -Hltn "sport = :$port" | grep -q . && return 0; sleep 0.02; done
	echo "bench-net.sh: nothing listens on $port after 15s" >&2
	for f in "$@"; do echo "== $f" >&2; cat "$f" >&2 || true; done
	return 1
}
median_gbps() { # median of the per-second rates of iperf3 -J output
	jq '[.intervals[].sum.bits_per_second] | sort | .[(length/2|floor)] / 1e9 * 100 | round / 100' "$1"
}
peer_of() { # the address the server saw, from iperf3 -s text output
	sed -n 's/.*Accepted connection from \([^,]*\), port.*/\1/p' "$1" | head -1
}
new_ns() { # starts a "container" and sets $ns_pid, its pid here
	unshare --user --map-root-user --net --pid --fork --kill-child sleep 600 &
	local unshare_pid=$!
	pids+=("$unshare_pid")
	for _ in $(seq 500); do
		ns_pid=$(cat "/proc/$unshare_pid/task/$unshare_pid/children" 2>/dev/null) && ns_pid=${ns_pid// /}
		[ -n "$ns_pid" ] &&
			[ "$(readlink "/proc/$ns_pid/ns/pid" 2>/dev/null)" != "$(readlink /proc/self/ns/pid)" ] &&
			[ "$(readlink "/proc/$ns_pid/exe" 2>/dev/null)" = "$(command -v sleep | xargs readlink -f)" ] && return 0
		sleep 0.01
	done
	echo "bench-net.sh: unshare did not make a namespace" >&2; return 1
}
in_ns() { nsenter -t "$ns_pid" -U -n --preserve-credentials -- "$@"; }
sandy_up() { # sandy_up ARGS...: network for $ns_pid, until sandy_down
	mkfifo "$work/up.in.$ns_pid"
	"$SLIRPBENCH" up --pid="$ns_pid" --state="$work/state.$ns_pid" "$@" <"$work/up.in.$ns_pid" >"$work/up.out.$ns_pid" &
	up_pid=$!
	exec {up_fd}>"$work/up.in.$ns_pid"
	for _ in $(seq 500); do grep -q ready "$work/up.out.$ns_pid" && return 0; kill -0 "$up_pid" 2>/dev/null || break; sleep 0.01; done
	echo "bench-net.sh: slirpbench up failed" >&2; return 1
}
# SIGKILL: pid 1 of a pid namespace ignores signals it has no handler for.
sandy_down() { exec {up_fd}>&-; wait "$up_pid" || true; kill -KILL "$ns_pid" 2>/dev/null || true; }

declare -A R   # results, Gbit/s
declare -A P   # peer addresses seen

host_server() { # iperf3 server on the host's loopback; sets $srv_port
	free_port; srv_port=$port
	iperf3 -s -B 127.0.0.1 -p "$srv_port" >/dev/null 2>&1 &
	srv_pid=$!; pids+=("$srv_pid")
	wait_listen "$srv_port"
}

echo "# bench-net: $(date -u +%FT%TZ), $(nproc) cores, load $(cut -d' ' -f1-3 /proc/loadavg), iperf3 -t $DUR, median of $REPEAT interleaved runs"

# Rows are measured REPEAT times, interleaved (floor, sandy, rootlesskit, ...)
# so that load from other work on the machine hits every row alike; the
# table shows the median of the runs.
add() { R[$1]="${R[$1]:-} $2"; }
med() { printf '%s\n' ${R[$1]:-} | sort -n | awk '{a[NR]=$1} END {if (NR) print a[int((NR+1)/2)]; else print "-"}'; }
for rep in $(seq "$REPEAT"); do
	# 1. loopback floor
	host_server
	iperf3 -c 127.0.0.1 -p "$srv_port" -t "$DUR" -J >"$work/floor.json"
	add floor "$(median_gbps "$work/floor.json")"

	# 2. container -> host through slirp4netns (host loopback on: 10.0.2.2 is the host's 127.0.0.1)
	for mtu in 1500 65520; do
		new_ns
		sandy_up --mtu="$mtu" --host-loopback
		in_ns iperf3 -c 10.0.2.2 -p "$srv_port" -t "$DUR" -J >"$work/c2h-sandy-$mtu.json"
		sandy_down
		add "c2h_sandy_$mtu" "$(median_gbps "$work/c2h-sandy-$mtu.json")"
		if $have_rk; then
			rootlesskit --state-dir="$work/rk-c2h-$mtu-$rep" --net=slirp4netns --mtu="$mtu" \
				iperf3 -c 10.0.2.2 -p "$srv_port" -t "$DUR" -J >"$work/c2h-rk-$mtu.json" 2>/dev/null
			add "c2h_rk_$mtu" "$(median_gbps "$work/c2h-rk-$mtu.json")"
		fi
	done
	# slirp4netns alone at MTU 65520, without and with --enable-seccomp
	# (sandy passes it, rootlesskit 1.1.0 does not): what the filter costs.
	for sc in off on; do
		new_ns
		flags=(--configure --mtu=65520)
		[ "$sc" = on ] && flags+=(--enable-seccomp)
		slirp4netns "${flags[@]}" "$ns_pid" tap0 >/dev/null 2>&1 &
		sl_pid=$!; pids+=("$sl_pid")
		for _ in $(seq 200); do in_ns grep -q tap0 /proc/net/route 2>/dev/null && break; sleep 0.02; done
		in_ns iperf3 -c 10.0.2.2 -p "$srv_port" -t "$DUR" -J >"$work/c2h-raw-$sc.json"
		kill "$sl_pid" 2>/dev/null || true; kill -KILL "$ns_pid" 2>/dev/null || true
		add "c2h_raw_seccomp_$sc" "$(median_gbps "$work/c2h-raw-$sc.json")"
	done
	kill "$srv_pid" 2>/dev/null || true

	# 3a. host -> container through the experimental bind bypass: iperf3's
	# own listening socket is a host socket (slirp.Options.BindNotifier)
	new_ns
	free_port
	rm -f "$work/notify.sock"
	mkfifo "$work/up.in.$ns_pid"
	"$SLIRPBENCH" up --pid="$ns_pid" --state="$work/state.$ns_pid" --bind-notifier="$work/notify.sock" \
		-p "127.0.0.1:$port:5201" <"$work/up.in.$ns_pid" >"$work/up.out.$ns_pid" &
	up_pid=$!
	exec {up_fd}>"$work/up.in.$ns_pid"
	for _ in $(seq 1500); do [ -S "$work/notify.sock" ] && break; sleep 0.01; done
	# The helper must not hold up's stdin fifo open (sandy_down closes it),
	# and $! must be the server itself, hence the exec's.
	(
		exec {up_fd}>&-
		exec nsenter -t "$ns_pid" -U -n --preserve-credentials -- \
			"$SLIRPBENCH" notify-exec --connect="$work/notify.sock" -- iperf3 -s -p 5201 >"$work/h2c-bypass.srv" 2>&1
	) &
	bp_pid=$!; pids+=("$bp_pid")
	wait_listen "$port" "$work/up.out.$ns_pid" "$work/h2c-bypass.srv" "$work/state.$ns_pid/slirp.log"
	iperf3 -c 127.0.0.1 -B 127.0.0.2 -p "$port" -t "$DUR" -J >"$work/h2c-bypass.json"
	kill "$bp_pid" 2>/dev/null || true # it holds the host port itself
	sandy_down
	add h2c_sandy_bypass "$(median_gbps "$work/h2c-bypass.json")"
	P[h2c_sandy_bypass]=$(peer_of "$work/h2c-bypass.srv")

	# 3. host -> container through the port drivers, client bound to 127.0.0.2
	for driver in builtin slirp4netns; do
		new_ns
		nsenter -t "$ns_pid" -U -n --preserve-credentials -- iperf3 -s -p 5201 >"$work/h2c-sandy-$driver.srv" 2>&1 &
		srv_in_pid=$!; pids+=("$srv_in_pid")
		free_port
		sandy_up --driver="$driver" -p "127.0.0.1:$port:5201"
		sleep 0.3 # the server inside
		iperf3 -c 127.0.0.1 -B 127.0.0.2 -p "$port" -t "$DUR" -J >"$work/h2c-sandy-$driver.json"
		kill "$srv_in_pid" 2>/dev/null || true
		sandy_down
		add "h2c_sandy_$driver" "$(median_gbps "$work/h2c-sandy-$driver.json")"
		P[h2c_sandy_$driver]=$(peer_of "$work/h2c-sandy-$driver.srv")
		if $have_rk; then
			free_port
			rootlesskit --state-dir="$work/rk-h2c-$driver-$rep" --net=slirp4netns --disable-host-loopback \
				--port-driver="$driver" -p "127.0.0.1:$port:5201/tcp" iperf3 -s -p 5201 >"$work/h2c-rk-$driver.srv" 2>&1 &
			rk_pid=$!; pids+=("$rk_pid")
			wait_listen "$port"; sleep 0.3
			iperf3 -c 127.0.0.1 -B 127.0.0.2 -p "$port" -t "$DUR" -J >"$work/h2c-rk-$driver.json"
			kill "$rk_pid"; wait "$rk_pid" 2>/dev/null || true
			add "h2c_rk_$driver" "$(median_gbps "$work/h2c-rk-$driver.json")"
			P[h2c_rk_$driver]=$(peer_of "$work/h2c-rk-$driver.srv")
		fi
	done
done

# 4. start-up cost
sandy_start=$("$SLIRPBENCH" starttime --runs="$RUNS")
sandy_start_p=$("$SLIRPBENCH" starttime --runs="$RUNS" -p "127.0.0.1:$((port + 1)):80")
sandy_start_ip=$("$SLIRPBENCH" starttime --runs="$RUNS" --in-process)
sandy_start_ip_p=$("$SLIRPBENCH" starttime --runs="$RUNS" --in-process -p "127.0.0.1:$((port + 3)):80")
ms_median() { # ms_median CMD...: median wall time of RUNS runs, in ms
	local t=()
	for _ in $(seq "$RUNS"); do
		local s; s=$(date +%s%N)
		"$@" >/dev/null 2>&1
		t+=($((($(date +%s%N) - s) / 1000)))
	done
	printf '%s\n' "${t[@]}" | sort -n | awk '{a[NR]=$1} END {printf "%.1f", a[int((NR+1)/2)]/1000}'
}
if $have_rk; then
	rk_none=$(ms_median rootlesskit --state-dir="$work/rk-s1" --net=host true)
	rk_slirp=$(ms_median rootlesskit --state-dir="$work/rk-s2" --net=slirp4netns true)
	rk_slirp_p=$(ms_median rootlesskit --state-dir="$work/rk-s3" --net=slirp4netns --port-driver=builtin -p "127.0.0.1:$((port + 2)):80/tcp" true)
fi

ratio() { awk -v a="$1" -v b="$2" 'BEGIN { if (b > 0) printf "%.2f", a / b; else print "-" }'; }
na() { echo "${1:--}"; }
echo
printf '%-46s %10s %12s\n' "row" "sandy" "rootlesskit"
printf '%-46s %10s %12s\n' "loopback floor (Gbit/s)" "$(med floor)" "$(med floor)"
for mtu in 1500 65520; do
	printf '%-46s %10s %12s\n' "container -> host, MTU $mtu (Gbit/s)" "$(med "c2h_sandy_$mtu")" "$(med "c2h_rk_$mtu")"
done
for driver in builtin slirp4netns; do
	printf '%-46s %10s %12s\n' "host -> container, $driver driver (Gbit/s)" "$(med "h2c_sandy_$driver")" "$(med "h2c_rk_$driver")"
	printf '%-46s %10s %12s\n' "  peer seen inside (client 127.0.0.2)" "${P[h2c_sandy_$driver]}" "$(na "${P[h2c_rk_$driver]:-}")"
done
printf '%-46s %10s %12s\n' "host -> container, bind bypass (Gbit/s)" "$(med h2c_sandy_bypass)" "-"
printf '%-46s %10s %12s\n' "  peer seen inside (client 127.0.0.2)" "${P[h2c_sandy_bypass]:-}" "-"
printf '%-46s %10s %12s\n' "slirp4netns alone, MTU 65520, seccomp off/on" "$(med c2h_raw_seccomp_off)" "$(med c2h_raw_seccomp_on)"
echo "runs (Gbit/s):"
for k in $(printf '%s\n' "${!R[@]}" | sort); do echo "  $k:${R[$k]}"; done
echo "start-up, sandy (ms):        $sandy_start"
echo "start-up, sandy with -p (ms): $sandy_start_p"
echo "start-up, sandy in-process (ms):        $sandy_start_ip"
echo "start-up, sandy in-process, -p (ms):    $sandy_start_ip_p"
if $have_rk; then
	echo "start-up, rootlesskit (ms):  net=host $rk_none, net=slirp4netns $rk_slirp (adds $(awk -v a="$rk_slirp" -v b="$rk_none" 'BEGIN{printf "%.1f", a-b}')), with -p $rk_slirp_p (adds $(awk -v a="$rk_slirp_p" -v b="$rk_none" 'BEGIN{printf "%.1f", a-b}'))"
fi
echo
echo "targets:"
echo "  builtin forward / loopback floor = $(ratio "$(med h2c_sandy_builtin)" "$(med floor)") (want >= 0.8)"
$have_rk && echo "  builtin forward / rootlesskit builtin = $(ratio "$(med h2c_sandy_builtin)" "$(med h2c_rk_builtin)") (want >= 1.5)"
for mtu in 1500 65520; do
	$have_rk && echo "  container -> host MTU $mtu / rootlesskit = $(ratio "$(med "c2h_sandy_$mtu")" "$(med "c2h_rk_$mtu")") (want 0.9..)"
done
echo "  client address kept (builtin): $([ "${P[h2c_sandy_builtin]}" = 127.0.0.2 ] && echo yes || echo "no (${P[h2c_sandy_builtin]})")"
echo "  bind bypass / loopback floor = $(ratio "$(med h2c_sandy_bypass)" "$(med floor)") (want >= 0.8)"
$have_rk && echo "  bind bypass / rootlesskit builtin = $(ratio "$(med h2c_sandy_bypass)" "$(med h2c_rk_builtin)") (want >= 1.5)"
