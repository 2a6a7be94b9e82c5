#!/usr/bin/env bash
# bench/live.sh: does camwatch keep up with a live link? (issue 14, the live part)
#
# Builds a veth pair whose inside end lives in a fresh network namespace, starts `camwatch run`
# capturing on that end, and replays the camera-mix capture into the outside end with
# `tcpreplay --mbps=RATE` for each rate. After each replay it waits for camwatch to finish the
# backlog, then reads /metrics: packets captured (`camwatch_capture_packets_total`) against
# packets tcpreplay sent, and `camwatch_capture_dropped_packets_total` by reason (kernel: the
# capture ring overflowed; queue: camwatch's own queue to the workers was full; interface).
# camwatch is restarted for every rate, so each starts from an empty flow table. Reports the
# highest rate with no drops at all. As a control, tcpdump then captures the same replay on the
# same link. The namespace is deleted on exit, however the script ends.
#
# Usage: CAPTURE=F bench/live.sh    (bench/compare.sh --live runs it on its camera-mix capture)
# Environment (defaults in brackets):
#   CAPTURE       the pcap to replay [the default camera-mix capture cached in bench/.work/]
#   CAMWATCH      [target/release/camwatch]
#   RATES         requested rates, Mbit/s, or `top` for tcpreplay --topspeed ["500 1000 1500 2000 2500"]
#   LIVE_WORKERS  camwatch packet workers [1]
#   LIVE_BUFFER   capture.buffer_size, bytes [camwatch's default, 16 MiB]
#   LIVE_CONTROL  also replay each rate to tcpdump capturing the same link, as a control [1]
#   LIVE_PORT     metrics port inside the namespace [19477]
#   OUT           directory for live.tsv, meta.tsv and logs [bench/.work/runs/live-<time>]
# Needs root; installs tcpreplay, iproute2 and curl with apt-get when missing.
set -euo pipefail

BENCH=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
REPO=$(cd "$BENCH/.." && pwd)

CAPTURE=${CAPTURE:-$BENCH/.work/camera-mix-c50-d755-s1-aall.pcap}
CAMWATCH=${CAMWATCH:-$REPO/target/release/camwatch}
RATES=${RATES:-500 1000 1500 2000 2500}
LIVE_WORKERS=${LIVE_WORKERS:-1}
LIVE_BUFFER=${LIVE_BUFFER:-}
LIVE_CONTROL=${LIVE_CONTROL:-1}
LIVE_PORT=${LIVE_PORT:-19477}
OUT=${OUT:-$BENCH/.work/runs/live-$(date +%Y%m%dT%H%M%S)}

die() { printf '\nERROR: %s\n' "$*" >&2; exit 1; }
[[ $EUID -eq 0 ]] || die "run as root (network namespaces, veth, packet capture)"
[[ -s $CAPTURE ]] || die "no capture $CAPTURE: run bench/compare.sh first, or set CAPTURE"
[[ -x $CAMWATCH ]] || die "CAMWATCH=$CAMWATCH is not an executable"

need=()
for t in tcpreplay:tcpreplay ip:iproute2 curl:curl tcpdump:tcpdump; do
    command -v "${t%%:*}" >/dev/null 2>&1 || need+=("${t#*:}")
done
if ((${#need[@]})); then
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${need[@]}" >/dev/null
fi

mkdir -p "$OUT/logs"
: >"$OUT/live.tsv"
meta() { printf '%s\t%s\n' "$1" "$2" >>"$OUT/meta.tsv"; }

# Names unique to this run (interface names are at most 15 characters).
NS=cwbench$$
OUTSIDE=cwbo$$
INSIDE=cwbi$$
cw_pid=

nudged=0 killed=0

# stop_camwatch: SIGTERM, then wait for camwatch to drain and exit. On a quiet link libpcap's
# TPACKET_V3 read can block until the next frame, so if camwatch is still there after 10 s a few
# frames are sent to wake its capture thread (counted in `nudged`); after 30 s it is killed
# (counted in `killed`). Both are reported: they are camwatch bugs, not benchmark results.
stop_camwatch() {
    [[ -n $cw_pid ]] || return 0
    kill -TERM "$cw_pid" 2>/dev/null || true
    local i
    for ((i = 0; i < 300; i++)); do
        kill -0 "$cw_pid" 2>/dev/null || break
        if ((i == 100)); then
            nudged=$((nudged + 1))
            echo "note: camwatch still running 10 s after SIGTERM; sending 16 frames to wake its capture" >&2
            tcpreplay --intf1="$OUTSIDE" --limit=16 "$CAPTURE" >/dev/null 2>&1 || true
        fi
        sleep 0.1
    done
    if kill -0 "$cw_pid" 2>/dev/null; then
        killed=$((killed + 1))
        echo "note: camwatch did not exit within 30 s of SIGTERM: killed" >&2
        kill -KILL "$cw_pid" 2>/dev/null || true
    fi
    wait "$cw_pid" 2>/dev/null || true
    cw_pid=
}

cleanup() {
    stop_camwatch
    ip netns del "$NS" 2>/dev/null || true        # takes the inside end, and so the pair, with it
    ip link del "$OUTSIDE" 2>/dev/null || true
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM   # so that cleanup runs on these too

# --- The link ---------------------------------------------------------------------------------
# outside end (tcpreplay writes here, in this namespace) <-> inside end (in $NS, camwatch
# captures here like on a mirror port). No addresses and no IPv6, so nothing but the replayed
# frames crosses it; a large MTU so no frame of the capture is refused.
ip netns add "$NS"
ip link add "$OUTSIDE" type veth peer name "$INSIDE"
ip link set "$INSIDE" netns "$NS"
sysctl -qw "net.ipv6.conf.$OUTSIDE.disable_ipv6=1" || true
ip netns exec "$NS" sysctl -qw "net.ipv6.conf.$INSIDE.disable_ipv6=1" || true
ip link set "$OUTSIDE" mtu 9000 up
ip -n "$NS" link set "$INSIDE" mtu 9000 up
ip -n "$NS" link set lo up

cat >"$OUT/camwatch-live.yaml" <<EOF
# camwatch run for bench/live.sh: the defaults (capture buffer 16 MiB unless LIVE_BUFFER, queue
# 8192 packets per worker) except that no evidence pcaps are written (replay writes none either).
sensor: bench-live
workers: $LIVE_WORKERS
evidence:
  enabled: false
EOF
if [[ -n $LIVE_BUFFER || -n ${LIVE_IMMEDIATE:-} ]]; then
    printf 'capture:\n' >>"$OUT/camwatch-live.yaml"
    [[ -z $LIVE_BUFFER ]] || printf '  buffer_size: %s\n' "$LIVE_BUFFER" >>"$OUT/camwatch-live.yaml"
    [[ -z ${LIVE_IMMEDIATE:-} ]] || printf '  immediate: %s\n' "$LIVE_IMMEDIATE" >>"$OUT/camwatch-live.yaml"
fi

metrics() { ip netns exec "$NS" curl -sf --max-time 5 "http://127.0.0.1:$LIVE_PORT/metrics"; }

# metric TEXT NAME LABEL...: the sum of the samples of NAME whose labels contain every LABEL
# (0 when there is none: a drop counter may appear only once something was dropped).
metric() {
    local text=$1 name=$2
    shift 2
    awk -v name="$name" -v labels="$*" '
        index($0, name "{") == 1 {
            n = split(labels, want, " "); ok = 1
            for (i = 1; i <= n; i++) if (index($0, want[i]) == 0) ok = 0
            if (ok) sum += $NF
        }
        END { printf "%.0f\n", sum }' <<<"$text"
}

# wait_settled: until camwatch's packet counter has not moved for 2 s (at most 2 minutes).
wait_settled() {
    local last=-1 now stable=0 i
    for ((i = 0; i < 240 && stable < 4; i++)); do
        sleep 0.5
        now=$(metric "$(metrics)" camwatch_capture_packets_total "source=\"$INSIDE\"")
        if [[ $now == "$last" ]]; then stable=$((stable + 1)); else stable=0; fi
        last=$now
    done
}

NUDGE=3
echo "Replaying $CAPTURE into $OUTSIDE; camwatch ($LIVE_WORKERS worker(s)) captures on $INSIDE in netns $NS"
printf '%10s %10s %10s %10s %10s %10s %10s %10s %10s\n' "req Mbit/s" "got Mbit/s" sent received kernel queue interface \
    "tcpdump" "td kernel"
for rate in $RATES; do
    dir=$OUT/live-$rate
    rm -rf "$dir" && mkdir -p "$dir"

    # camwatch, fresh for each rate: packs, event log and alert journal on, state in $dir.
    ip netns exec "$NS" "$CAMWATCH" run --config "$OUT/camwatch-live.yaml" --interface "$INSIDE" \
        --rules "$REPO/rules" --listen "127.0.0.1:$LIVE_PORT" --events "$dir/events.jsonl" \
        --alerts "$dir/alerts.jsonl" --state "$dir/state.db" >"$dir/camwatch.log" 2>&1 &
    cw_pid=$!
    for ((i = 0; i < 100; i++)); do
        ip netns exec "$NS" curl -sf --max-time 1 "http://127.0.0.1:$LIVE_PORT/healthz" >/dev/null 2>&1 && break
        kill -0 "$cw_pid" 2>/dev/null || die "camwatch run exited: $(tail -5 "$dir/camwatch.log")"
        sleep 0.2
    done
    ((i < 100)) || die "camwatch did not serve /healthz within 20 s: $dir/camwatch.log"
    sleep 1   # give the capture a moment past /healthz before the first frame

    # The replay: the whole capture preloaded into memory, sent at RATE Mbit/s (or as fast as
    # tcpreplay can: `top`).
    speed=(--mbps="$rate")
    [[ $rate != top ]] || speed=(--topspeed)
    tcpreplay --intf1="$OUTSIDE" "${speed[@]}" --preload-pcap "$CAPTURE" >"$dir/tcpreplay.log" 2>&1 ||
        die "tcpreplay failed: $(tail -5 "$dir/tcpreplay.log")"
    sent=$(awk '/Successful packets:/ {print $3}' "$dir/tcpreplay.log")
    got=$(sed -n 's/^Rated: .*, \([0-9.]*\) Mbps.*/\1/p' "$dir/tcpreplay.log")

    # Wait until camwatch has taken everything the kernel kept: the packet counter stops moving.
    wait_settled
    # camwatch publishes its capture counters in batches: while frames flow at least every
    # 250 ms, but on a link that has gone quiet only when the next frame wakes its capture
    # thread. So send NUDGE single frames 0.4 s apart (each one publishes the counts up to and
    # including itself), wait again, and count them out of what was received.
    for ((i = 0; i < NUDGE; i++)); do
        tcpreplay --intf1="$OUTSIDE" --limit=1 "$CAPTURE" >/dev/null 2>&1
        sleep 0.4
    done
    wait_settled
    m=$(metrics)
    printf '%s\n' "$m" >"$dir/metrics.txt"
    received=$(($(metric "$m" camwatch_capture_packets_total "source=\"$INSIDE\"") - NUDGE))
    kernel=$(metric "$m" camwatch_capture_dropped_packets_total 'reason="kernel"' "source=\"$INSIDE\"")
    queue=$(metric "$m" camwatch_capture_dropped_packets_total 'reason="queue"' "source=\"$INSIDE\"")
    iface=$(metric "$m" camwatch_capture_dropped_packets_total 'reason="interface"' "source=\"$INSIDE\"")

    stop_camwatch

    # Control: tcpdump capturing the same link with the same kernel buffer and immediate mode,
    # writing nothing. If it drops too, the host (the replay and the capture sharing its cores)
    # is the limit at this rate rather than camwatch.
    td_recv=- td_drop=-
    if ((LIVE_CONTROL)); then
        ip netns exec "$NS" tcpdump -i "$INSIDE" -B "$(((${LIVE_BUFFER:-16777216} + 1023) / 1024))" \
            --immediate-mode -s 65535 -w /dev/null >"$dir/tcpdump.log" 2>&1 &
        td_pid=$!
        sleep 2
        tcpreplay --intf1="$OUTSIDE" "${speed[@]}" --preload-pcap "$CAPTURE" >"$dir/tcpreplay-control.log" 2>&1 ||
            die "tcpreplay failed: $(tail -5 "$dir/tcpreplay-control.log")"
        sleep 2
        kill -INT "$td_pid"
        wait "$td_pid" || true
        td_recv=$(awk '/packets captured/ {print $1}' "$dir/tcpdump.log")
        td_drop=$(awk '/packets dropped by kernel/ {print $1}' "$dir/tcpdump.log")
    fi

    printf '%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n' "$rate" "$got" "$sent" "$received" "$kernel" "$queue" "$iface" \
        "$td_recv" "$td_drop" >>"$OUT/live.tsv"
    printf '%10s %10s %10s %10s %10s %10s %10s %10s %10s\n' "$rate" "$got" "$sent" "$received" "$kernel" "$queue" "$iface" \
        "$td_recv" "$td_drop"
done

# The best rate is judged by what tcpreplay achieved: on a slow host it falls short of the rate
# asked for.
best=$(awk -F'\t' '$5 == 0 && $6 == 0 && $4 >= $3 && $2 > got {got = $2; best = $1 " requested, " $2 " achieved"}
    END {print best}' "$OUT/live.tsv")
if [[ -n $best ]]; then
    echo "Highest zero-drop rate: $best Mbit/s"
else
    echo "Highest zero-drop rate: none of the rates tried ($RATES)"
fi
meta tcpreplay_version "$(tcpreplay -V 2>&1 | sed -n 's/^tcpreplay version: \([^ ]*\).*/\1/p' | head -1)"
if ((nudged || killed)); then
    note="camwatch run did not exit on SIGTERM on a quiet link at $nudged of the rates until frames arrived; killed at $killed"
    echo "note: $note"
    meta live_notes "$note"
fi
meta live_workers "$LIVE_WORKERS"
meta live_config "capture buffer ${LIVE_BUFFER:-at its default (16 MiB)}, queue at its default, evidence off"
