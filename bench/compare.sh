#!/usr/bin/env bash
# bench/compare.sh: camwatch side by side with tcpdump and Suricata 7 (issue 14).
#
# Generates the benchmark captures with camwatch's own generator, then runs interleaved rounds
# of, in turn,
#   tcpdump -r F -w /dev/null                 the floor: libpcap reading the file, nothing else
#   suricata --runmode single -r F            Suricata 7 (Debian 13 chroot), comparable rules
#   camwatch replay --workers 1 / 2           the shipped packs, event log and alert journal on
# and takes the median wall time, CPU seconds (user+sys) and peak RSS of each (GNU time). It
# prints packets/s, Mbit/s and the ratios, checks the targets, and writes bench/RESULTS.md with
# the date, machine and versions. Criterion benchmarks (benches/) keep covering the stages.
#
# Usage: bench/compare.sh [--live | --live-only] [--no-flood] [--no-suricata]
#   --live         also measure live capture (bench/live.sh: tcpreplay into a veth pair)
#   --live-only    only the live part (still writes RESULTS.md, with that section alone)
#   --no-flood     skip the 2M-flow flood rows
#   --no-suricata  skip Suricata (no chroot needed)
# Environment (defaults in brackets):
#   CAMWATCH [target/release/camwatch; built with cargo build --release when missing]
#   ROUNDS [5]  FLOOD_ROUNDS [ROUNDS]  CAMERAS [50]  DURATION [755 s: 999,824 packets]  SEED [1]
#   ANOMALIES [all: gives both tools DNS, TLS and alerts to produce]  FLOOD_FLOWS [2000000]
#   SURICATA_CHROOT [/var/cache/camwatch-bench/trixie]  RESULTS [bench/RESULTS.md]
#   RUN_TIMEOUT [900: seconds before a run counts as hung and the benchmark stops]
#   RATES ["500 1000 1500 2000 2500"]  LIVE_WORKERS [1]  (see bench/live.sh)
# Needs root (chroot, mounts, network namespaces); installs what it needs with apt-get.
# Captures are cached in bench/.work/ by their parameters (delete it after changing the
# generator); each run's raw numbers and logs stay in bench/.work/runs/<time>/.
set -euo pipefail

BENCH=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
REPO=$(cd "$BENCH/.." && pwd)
cd "$REPO"

ROUNDS=${ROUNDS:-5}
FLOOD_ROUNDS=${FLOOD_ROUNDS:-$ROUNDS}
CAMERAS=${CAMERAS:-50}
DURATION=${DURATION:-755}
SEED=${SEED:-1}
ANOMALIES=${ANOMALIES:-all}
FLOOD_FLOWS=${FLOOD_FLOWS:-2000000}
SURICATA_CHROOT=${SURICATA_CHROOT:-/var/cache/camwatch-bench/trixie}
RESULTS=${RESULTS:-$BENCH/RESULTS.md}
RUN_TIMEOUT=${RUN_TIMEOUT:-900}   # seconds one tool run may take before it is called hung
WORK=$BENCH/.work

do_offline=1 do_live=0 do_flood=1 do_suricata=1
for arg in "$@"; do
    case $arg in
        --live) do_live=1 ;;
        --live-only) do_live=1 do_offline=0 ;;
        --no-flood) do_flood=0 ;;
        --no-suricata) do_suricata=0 ;;
        -h | --help) sed -n '2,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//'; exit 0 ;;
        *) echo "unknown option $arg (see --help)" >&2; exit 2 ;;
    esac
done
((do_offline)) || do_flood=0 do_suricata=0

say() { printf '\n== %s\n' "$*"; }
die() { printf '\nERROR: %s\n' "$*" >&2; exit 1; }

[[ $EUID -eq 0 ]] || die "run as root: the Suricata chroot, its mounts and the live network namespace need it"

# --- Tools ------------------------------------------------------------------------------------
# Installed from the Debian archive when missing (command -> package).
need=()
want() { command -v "$1" >/dev/null 2>&1 || need+=("$2"); }
want tcpdump tcpdump
want capinfos tshark
want jq jq
want python3 python3
want mountpoint util-linux
[[ -x /usr/bin/time ]] || need+=(time)   # GNU time: the shell keyword cannot report peak RSS
((do_suricata)) && want debootstrap debootstrap
if ((do_live)); then want tcpreplay tcpreplay; want ip iproute2; want curl curl; fi
if ((${#need[@]})); then
    say "Installing ${need[*]}"
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${need[@]}" >/dev/null
fi

# --- camwatch ---------------------------------------------------------------------------------
if [[ -z ${CAMWATCH:-} ]]; then
    CAMWATCH=$REPO/target/release/camwatch
    if [[ ! -x $CAMWATCH ]]; then
        say "Building camwatch (cargo build --release)"
        cargo build --release
    fi
fi
[[ -x $CAMWATCH ]] || die "CAMWATCH=$CAMWATCH is not an executable"
CAMWATCH_SRC=$(realpath "$CAMWATCH")

RUN=$WORK/runs/$(date +%Y%m%dT%H%M%S)
mkdir -p "$RUN/logs" "$RUN/out"
# Every round runs the same binary even if a build replaces target/release/camwatch meanwhile.
cp "$CAMWATCH_SRC" "$RUN/camwatch"
CAMWATCH=$RUN/camwatch
: >"$RUN/times.tsv"
meta() { printf '%s\t%s\n' "$1" "$2" >>"$RUN/meta.tsv"; }

# Unmount what we mounted into the chroot, whatever way the script ends.
mounted=()
cleanup() {
    local i
    for ((i = ${#mounted[@]} - 1; i >= 0; i--)); do umount "${mounted[i]}" 2>/dev/null || umount -l "${mounted[i]}" || true; done
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM   # so that cleanup runs on these too

# --- Machine and versions (for RESULTS.md) ----------------------------------------------------
meta date "$(date -u '+%Y-%m-%d %H:%M:%S UTC')"
meta uname "$(uname -a)"
meta cpu "$(sed -n 's/^model name[[:space:]]*: //p' /proc/cpuinfo | head -1)"
meta cores "$(nproc)"
meta mem "$(awk '/^MemTotal/ {printf "%.1f GiB", $2 / 1048576}' /proc/meminfo)"
meta camwatch_bin "${CAMWATCH_SRC#"$REPO"/}"
meta camwatch_version "$("$CAMWATCH" --version)"
meta git "$(git -C "$REPO" rev-parse --short HEAD 2>/dev/null || echo unknown)$(git -C "$REPO" diff --quiet HEAD 2>/dev/null || echo ' + uncommitted changes')"
meta tcpdump_version "$(tcpdump --version 2>&1 | sed -n 1p)"
meta libpcap_version "$(tcpdump --version 2>&1 | sed -n 2p)"
meta rounds "$ROUNDS"
meta flood_rounds "$FLOOD_ROUNDS"

# --- Captures (cached by parameters) ----------------------------------------------------------
# capture_info FILE: writes FILE.info (packets <TAB> frame bytes) once; prints it.
capture_info() {
    [[ -s $1.info ]] || capinfos -TrcdM "$1" | cut -f2,3 >"$1.info"
    cat "$1.info"
}

if ((do_offline || do_live)); then
    say "Camera-mix capture: $CAMERAS cameras, ${DURATION} s, seed $SEED, anomalies $ANOMALIES"
    MIX=$WORK/camera-mix-c${CAMERAS}-d${DURATION}-s${SEED}-a${ANOMALIES//,/+}.pcap
    mix_cmd="camwatch synth -o F --cameras $CAMERAS --duration $DURATION --seed $SEED --anomalies $ANOMALIES"
    if [[ ! -s $MIX ]]; then
        mkdir -p "$WORK"
        "$CAMWATCH" synth -o "$MIX.tmp" --cameras "$CAMERAS" --duration "$DURATION" --seed "$SEED" \
            --anomalies "$ANOMALIES" 2>"$RUN/logs/synth-camera-mix.log"
        mv "$MIX.tmp" "$MIX"
        rm -f "$MIX.info"
    fi
    read -r MIX_PACKETS MIX_BYTES < <(capture_info "$MIX")
    echo "$MIX: $MIX_PACKETS packets, $MIX_BYTES bytes"
    ((MIX_PACKETS > 900000 && MIX_PACKETS < 1100000)) ||
        echo "note: the issue's capture has about 1,000,000 packets; set DURATION to get there"
    meta camera-mix_cmd "$mix_cmd"
    meta camera-mix_packets "$MIX_PACKETS"
    meta camera-mix_bytes "$MIX_BYTES"
fi

FLOOD=
if ((do_flood)); then
    # `synth --flood` is new; an older camwatch has no such option and the row is skipped.
    if "$CAMWATCH" synth --help | grep -q -- '--flood'; then
        say "Flood capture: $FLOOD_FLOWS single-SYN flows"
        FLOOD=$WORK/flood-f${FLOOD_FLOWS}.pcap
        if [[ ! -s $FLOOD ]]; then
            "$CAMWATCH" synth --flood "$FLOOD_FLOWS" -o "$FLOOD.tmp" 2>"$RUN/logs/synth-flood.log"
            mv "$FLOOD.tmp" "$FLOOD"
            rm -f "$FLOOD.info"
        fi
        read -r FLOOD_PACKETS FLOOD_BYTES < <(capture_info "$FLOOD")
        echo "$FLOOD: $FLOOD_PACKETS packets, $FLOOD_BYTES bytes"
        meta flood_cmd "camwatch synth --flood $FLOOD_FLOWS -o F"
        meta flood_packets "$FLOOD_PACKETS"
        meta flood_bytes "$FLOOD_BYTES"
    else
        echo "SKIPPED the flood rows: '$CAMWATCH synth --help' has no --flood option"
        meta flood_skipped "this camwatch's synth has no --flood option"
    fi
fi

# --- Suricata 7 in a Debian 13 chroot ---------------------------------------------------------
# Debian 12 has no Suricata 7: debootstrap a minimal trixie once (into DIR.partial, moved into
# place when complete) and install suricata there. Both steps are skipped when already done.
if ((do_suricata)); then
    if [[ ! -x $SURICATA_CHROOT/usr/bin/suricata ]]; then
        if [[ ! -x $SURICATA_CHROOT/usr/bin/apt-get ]]; then
            say "Creating the Debian 13 chroot $SURICATA_CHROOT (debootstrap, a few minutes)"
            # Never delete anything that still has a file system mounted inside it.
            for d in "$SURICATA_CHROOT" "$SURICATA_CHROOT.partial"; do
                ! grep -q " $d/" /proc/mounts || die "$d has file systems mounted inside (see /proc/mounts): unmount them first"
            done
            if [[ -e $SURICATA_CHROOT ]]; then
                rmdir "$SURICATA_CHROOT" 2>/dev/null || die "$SURICATA_CHROOT exists but is no Debian chroot: remove it or set SURICATA_CHROOT"
            fi
            rm -rf "$SURICATA_CHROOT.partial"
            mkdir -p "$(dirname "$SURICATA_CHROOT")"
            debootstrap --variant=minbase trixie "$SURICATA_CHROOT.partial" http://deb.debian.org/debian \
                >"$RUN/logs/debootstrap.log" 2>&1 || die "debootstrap failed; see $RUN/logs/debootstrap.log"
            mv "$SURICATA_CHROOT.partial" "$SURICATA_CHROOT"
        fi
        say "Installing suricata in the chroot"
        # No daemons may start inside the chroot.
        printf '#!/bin/sh\nexit 101\n' >"$SURICATA_CHROOT/usr/sbin/policy-rc.d"
        chmod +x "$SURICATA_CHROOT/usr/sbin/policy-rc.d"
        mountpoint -q "$SURICATA_CHROOT/proc" || { mount -t proc proc "$SURICATA_CHROOT/proc" && mounted+=("$SURICATA_CHROOT/proc"); }
        { chroot "$SURICATA_CHROOT" apt-get update -qq &&
            DEBIAN_FRONTEND=noninteractive chroot "$SURICATA_CHROOT" apt-get install -y -qq --no-install-recommends suricata; } \
            >"$RUN/logs/suricata-install.log" 2>&1 || die "installing suricata in the chroot failed; see $RUN/logs/suricata-install.log"
    fi
    # Suricata sees the captures and its output directories as /bench/work, its configuration
    # as /bench/suricata (read-only), and needs /proc.
    mkdir -p "$SURICATA_CHROOT/bench/work" "$SURICATA_CHROOT/bench/suricata"
    if ! mountpoint -q "$SURICATA_CHROOT/proc"; then
        mount -t proc proc "$SURICATA_CHROOT/proc"
        mounted+=("$SURICATA_CHROOT/proc")
    fi
    for m in work suricata; do
        if mountpoint -q "$SURICATA_CHROOT/bench/$m"; then umount "$SURICATA_CHROOT/bench/$m"; fi
    done
    mount --bind "$WORK" "$SURICATA_CHROOT/bench/work"
    mounted+=("$SURICATA_CHROOT/bench/work")
    mount --bind "$BENCH/suricata" "$SURICATA_CHROOT/bench/suricata"
    mount -o remount,bind,ro "$SURICATA_CHROOT/bench/suricata"
    mounted+=("$SURICATA_CHROOT/bench/suricata")
    SURICATA_VERSION=$(chroot "$SURICATA_CHROOT" suricata -V | sed 's/^This is Suricata version //')
    [[ $SURICATA_VERSION == 7.* ]] || die "the chroot has Suricata $SURICATA_VERSION, not 7"
    meta suricata_version "$SURICATA_VERSION"
    meta suricata_chroot "$SURICATA_CHROOT"
fi

# --- The runs ---------------------------------------------------------------------------------
# set_cmd TOOL CAPTURE_FILE OUTDIR: sets CMD to the command line of one tool on one capture
# (and empties OUTDIR for its output).
#   tcpdump      reads every packet and writes nothing (libpcap's read rate)
#   suricata     single runmode, the rules of bench/suricata/, EVE to OUTDIR/eve.json
#   camwatch-wN  replay with N workers: the shipped packs, event log and alert journal on
set_cmd() {
    local tool=$1 file=$2 out=$3
    rm -rf "$out" && mkdir -p "$out"
    case $tool in
        tcpdump) CMD=(tcpdump -r "$file" -w /dev/null) ;;
        suricata)
            CMD=(chroot "$SURICATA_CHROOT" suricata --runmode single -r "/bench/work/${file#"$WORK"/}"
                -c /bench/suricata/suricata.yaml -S /bench/suricata/camwatch.rules
                -l "/bench/work/${out#"$WORK"/}" -k none)
            ;;
        camwatch-w*)
            CMD=("$CAMWATCH" replay -q --rules "$REPO/rules" --workers "${tool#camwatch-w}"
                --events "$out/events.jsonl" --alerts "$out/alerts.jsonl" "$file")
            ;;
        *) die "unknown tool $tool" ;;
    esac
}

# measure CAPTURE TOOL ROUND FILE: one timed run; appends a row to times.tsv. GNU time gives
# wall seconds, user and system CPU seconds and the peak resident set (KiB) of the process.
measure() {
    local capture=$1 tool=$2 round=$3 file=$4
    local out=$RUN/out/$capture-$tool log=$RUN/logs/$capture-$tool-r$round.log
    set_cmd "$tool" "$file" "$out"
    # The last run's event log (a flood writes over a gigabyte) is still being written back:
    # without this, the next run is throttled by the kernel for the previous one's output.
    sync
    local status=0
    timeout -k 10 "$RUN_TIMEOUT" /usr/bin/time -f '%e %U %S %M' -o "$RUN/time.txt" "${CMD[@]}" >"$log" 2>&1 || status=$?
    if ((status)); then
        tail -20 "$log" >&2
        ((status != 124)) || die "$tool hung on $capture (round $round): killed after ${RUN_TIMEOUT} s: ${CMD[*]} (log: $log)"
        die "$tool failed on $capture (round $round) with status $status: ${CMD[*]} (log: $log)"
    fi
    # A fast run that skipped packets would be no result: camwatch's summary and Suricata's
    # exit statistics must count every packet of the capture.
    local seen=
    case $tool in
        suricata) seen=$(sed -n 's/.*pcap: read [0-9]* files\{0,1\}, \([0-9]*\) packets.*/\1/p' "$log") ;;
        camwatch-w*) seen=$(awk '$1 == "packets" {print $2}' "$log") ;;
    esac
    if [[ $tool != tcpdump && $seen != "$(cut -f1 "$file.info")" ]]; then
        die "$tool read ${seen:-no} packets of $capture, not $(cut -f1 "$file.info") (log: $log)"
    fi
    local wall user sys rss
    read -r wall user sys rss <"$RUN/time.txt"
    printf '%s\t%s\t%s\t%s\t%s\t%s\t%s\n' "$capture" "$tool" "$round" "$wall" "$user" "$sys" "$rss" >>"$RUN/times.tsv"
    awk -v r="$round" -v t="$tool" -v w="$wall" -v u="$user" -v s="$sys" -v m="$rss" \
        'BEGIN { printf "  round %s  %-12s %7.2f s wall %7.2f s CPU %7.1f MiB peak RSS\n", r, t, w, u + s, m / 1024 }' 
}

# check_outputs: untimed first run of Suricata and camwatch on the camera mix (it also warms
# the page cache for everyone). Their EVE logs must hold DNS, TLS and alert records, and with
# the default anomalies the cloud lookup, cloud SNI and CVE-2017-7921 alerts, or the
# comparison is not of equal work: stop here.
check_outputs() {
    local expect_s=() expect_c=()
    if [[ $ANOMALIES == all ]]; then
        expect_s=(--expect-alert 9000001 --expect-alert 9000011 --expect-alert 9000021)
        expect_c=(--expect-alert hikvision-cloud-lookup --expect-alert hikvision-cloud-tls --expect-alert exploit-cve-2017-7921)
    fi
    say "Checking the outputs are alike (untimed run of each tool)"
    cat "$MIX" >/dev/null
    if ((do_suricata)); then
        set_cmd suricata "$MIX" "$RUN/out/check-suricata"
        timeout -k 10 "$RUN_TIMEOUT" "${CMD[@]}" >"$RUN/logs/check-suricata.log" 2>&1 ||
            { st=$?; tail -20 "$RUN/logs/check-suricata.log"; die "Suricata failed (status $st; 124: hung): ${CMD[*]}"; }
        if grep -q '^E: ' "$RUN/logs/check-suricata.log"; then
            grep '^E: ' "$RUN/logs/check-suricata.log" >&2
            die "Suricata reported errors (a rule that does not load?): $RUN/logs/check-suricata.log"
        fi
        python3 "$BENCH/eve_summary.py" "$RUN/out/check-suricata/eve.json" --label Suricata \
            --require dns,tls,alert "${expect_s[@]}" --json "$RUN/eve-suricata.json" ||
            die "Suricata's EVE lacks records the comparison needs (above)"
    fi
    set_cmd camwatch-w1 "$MIX" "$RUN/out/check-camwatch"
    timeout -k 10 "$RUN_TIMEOUT" "${CMD[@]}" >"$RUN/logs/check-camwatch.log" 2>&1 ||
        { st=$?; tail -20 "$RUN/logs/check-camwatch.log"; die "camwatch failed (status $st; 124: hung): ${CMD[*]}"; }
    python3 "$BENCH/eve_summary.py" "$RUN/out/check-camwatch/events.jsonl" --label camwatch \
        --journal "$RUN/out/check-camwatch/alerts.jsonl" \
        --require dns,tls,alert "${expect_c[@]}" --json "$RUN/eve-camwatch.json" ||
        die "camwatch's event log lacks records the comparison needs (above)"
    meta camera-mix_flows "$(awk '$1 == "flows" {print $2}' "$RUN/logs/check-camwatch.log")"
}

if ((do_offline)); then
    check_outputs

    tools=(tcpdump)
    ((do_suricata)) && tools+=(suricata)
    tools+=(camwatch-w1 camwatch-w2)
    say "Camera mix: $ROUNDS interleaved rounds of ${tools[*]}"
    for ((round = 1; round <= ROUNDS; round++)); do
        for tool in "${tools[@]}"; do measure camera-mix "$tool" "$round" "$MIX"; done
    done

    if [[ -n $FLOOD ]]; then
        # Suricata is not run here: the flood rows are about camwatch's flow table (memory
        # bound, and scaling with workers when there are many flows); tcpdump is the floor.
        say "Flood: $FLOOD_ROUNDS interleaved rounds of tcpdump camwatch-w1 camwatch-w2"
        cat "$FLOOD" >/dev/null
        for ((round = 1; round <= FLOOD_ROUNDS; round++)); do
            for tool in tcpdump camwatch-w1 camwatch-w2; do measure flood "$tool" "$round" "$FLOOD"; done
            rm -rf "$RUN"/out/flood-*   # its event log is gigabytes
        done
    fi
    rm -rf "$RUN"/out/camera-mix-*
fi

# --- Live capture -----------------------------------------------------------------------------
if ((do_live)); then
    say "Live capture (bench/live.sh)"
    CAMWATCH=$CAMWATCH CAPTURE=$MIX OUT=$RUN "$BENCH/live.sh"
fi

# --- Report -----------------------------------------------------------------------------------
say "Results (also in ${RESULTS#"$REPO"/}; raw numbers and logs in ${RUN#"$REPO"/})"
python3 "$BENCH/report.py" "$RUN" --out "$RESULTS"
