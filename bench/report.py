#!/usr/bin/env python3
"""Turns one bench/compare.sh run into a table and bench/RESULTS.md.

    report.py RUN_DIR --out RESULTS.md

RUN_DIR holds what compare.sh and live.sh recorded:
  meta.tsv          key <TAB> value: date, machine, versions, capture parameters and sizes
  times.tsv         capture, tool, round, wall s, user s, sys s, peak RSS KiB (one row a run)
  eve-*.json        record counts from eve_summary.py (the equal-work check)
  live.tsv          requested Mbit/s, achieved Mbit/s, packets sent, received, drops by reason

Medians are taken per capture and tool over the rounds. Packets/s and Mbit/s are the capture's
packet count and total frame bytes over the median wall time.
"""

import argparse
import json
import os
import statistics
import sys

TOOLS = ["tcpdump", "suricata", "camwatch-w1", "camwatch-w2"]
TOOL_LABEL = {
    "tcpdump": "tcpdump -r F -w /dev/null",
    "suricata": "Suricata --runmode single",
    "camwatch-w1": "camwatch replay, 1 worker",
    "camwatch-w2": "camwatch replay, 2 workers",
}
MIB = 1024.0


def read_meta(run):
    meta = {}
    path = os.path.join(run, "meta.tsv")
    if os.path.exists(path):
        with open(path, encoding="utf-8") as f:
            for line in f:
                key, _, value = line.rstrip("\n").partition("\t")
                meta[key] = value
    return meta


def read_times(run):
    """{(capture, tool): {"wall": [...], "cpu": [...], "rss": [...]}}"""
    out = {}
    path = os.path.join(run, "times.tsv")
    if not os.path.exists(path):
        return out
    with open(path, encoding="utf-8") as f:
        for line in f:
            capture, tool, _round, wall, user, sys_, rss = line.split("\t")
            d = out.setdefault((capture, tool), {"wall": [], "cpu": [], "rss": []})
            d["wall"].append(float(wall))
            d["cpu"].append(float(user) + float(sys_))
            d["rss"].append(int(rss) / MIB)
    return out


def summarise(times, meta, capture):
    """Median row per tool of one capture: pps, Mbit/s, wall, CPU, RSS."""
    packets = int(meta.get(f"{capture}_packets", 0) or 0)
    nbytes = int(meta.get(f"{capture}_bytes", 0) or 0)
    rows = {}
    for tool in TOOLS:
        d = times.get((capture, tool))
        if not d:
            continue
        wall = statistics.median(d["wall"])
        rows[tool] = {
            "runs": len(d["wall"]),
            "wall": wall,
            "wall_min": min(d["wall"]),
            "wall_max": max(d["wall"]),
            "cpu": statistics.median(d["cpu"]),
            "rss": statistics.median(d["rss"]),
            "rss_max": max(d["rss"]),
            "pps": packets / wall if wall > 0 else float("nan"),
            "mbps": nbytes * 8 / wall / 1e6 if wall > 0 else float("nan"),
        }
    return rows


def ratio(rows, a, b):
    if a in rows and b in rows and rows[b]["pps"] > 0:
        return rows[a]["pps"] / rows[b]["pps"]
    return None


def fmt_ratio(r):
    return "not run" if r is None else f"{r:.2f}×"


def table(rows):
    lines = [
        "| tool | runs | packets/s | Mbit/s | wall s (median; min–max) | CPU s (user+sys) | peak RSS MiB |",
        "|---|--:|--:|--:|--:|--:|--:|",
    ]
    for tool in TOOLS:
        r = rows.get(tool)
        if not r:
            continue
        lines.append(
            f"| {TOOL_LABEL[tool]} | {r['runs']} | {r['pps']:,.0f} | {r['mbps']:,.0f} | "
            f"{r['wall']:.2f} ({r['wall_min']:.2f}–{r['wall_max']:.2f}) | {r['cpu']:.2f} | {r['rss']:.1f} |"
        )
    return lines


def verdict(ok):
    if ok is None:
        return "not run"
    return "PASS" if ok else "MISS"


def read_live(run):
    path = os.path.join(run, "live.tsv")
    rows = []
    if os.path.exists(path):
        with open(path, encoding="utf-8") as f:
            for line in f:
                req, got, sent, recv, kern, queue, iface, td_recv, td_drop = line.rstrip("\n").split("\t")
                rows.append(
                    {
                        "req": req,
                        "got": float(got),
                        "sent": int(sent),
                        "recv": int(float(recv)),
                        "kernel": int(float(kern)),
                        "queue": int(float(queue)),
                        "iface": int(float(iface)),
                        "td_recv": td_recv,
                        "td_drop": td_drop,
                    }
                )
    return rows


def num(text):
    return f"{int(text):,}" if text.isdigit() else text


def read_eve(run, name):
    path = os.path.join(run, f"eve-{name}.json")
    if os.path.exists(path):
        with open(path, encoding="utf-8") as f:
            return json.load(f)
    return None


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("run")
    ap.add_argument("--out", required=True)
    a = ap.parse_args()

    meta = read_meta(a.run)
    times = read_times(a.run)
    main_rows = summarise(times, meta, "camera-mix")
    flood_rows = summarise(times, meta, "flood")
    live = read_live(a.run)

    md = [
        "# camwatch benchmark results",
        "",
        "Written by `bench/compare.sh` (issue 14); rerun it to refresh this file. Medians over",
        "interleaved rounds; packets/s and Mbit/s are the capture's packets and frame bytes over",
        "the median wall time; CPU is user+sys; peak RSS is GNU time's maximum resident set.",
        "",
        f"- date: {meta.get('date', '?')}",
        f"- machine: `{meta.get('uname', '?')}`",
        f"- CPU: {meta.get('cpu', '?')} ({meta.get('cores', '?')} cores), memory {meta.get('mem', '?')}",
        f"- camwatch: {meta.get('camwatch_version', '?')} (`{meta.get('camwatch_bin', '?')}`, "
        f"tree {meta.get('git', '?')})",
        "- Suricata: "
        + (
            f"{meta['suricata_version']} (Debian 13 chroot `{meta.get('suricata_chroot', '?')}`)"
            if meta.get("suricata_version")
            else "not run"
        ),
        f"- tcpdump: {meta.get('tcpdump_version', '?')}, {meta.get('libpcap_version', '?')}",
    ]
    if live:
        md.append(f"- tcpreplay: {meta.get('tcpreplay_version', '?')}")
    md.append(f"- rounds: {meta.get('rounds', '?')} (flood: {meta.get('flood_rounds', '?')})")
    if meta.get("notes"):
        md.append(f"- notes: {meta['notes']}")

    if main_rows:
        md += [
            "",
            "## Camera mix",
            "",
            f"`{meta.get('camera-mix_cmd', '?')}`: {int(meta.get('camera-mix_packets', 0)):,} packets, "
            f"{int(meta.get('camera-mix_bytes', 0)):,} bytes, {meta.get('camera-mix_flows', '?')} flows. "
            "camwatch runs `replay -q --rules rules --events E --alerts A --workers N` (the shipped "
            "packs, event log and alert journal on); Suricata runs the comparable rules in "
            "`bench/suricata/` with `-k none`.",
            "",
        ]
        md += table(main_rows)
        md += [
            "",
            f"- camwatch 1 worker / Suricata: {fmt_ratio(ratio(main_rows, 'camwatch-w1', 'suricata'))}",
            f"- camwatch 1 worker / tcpdump: {fmt_ratio(ratio(main_rows, 'camwatch-w1', 'tcpdump'))}",
            f"- camwatch 2 workers / 1 worker: {fmt_ratio(ratio(main_rows, 'camwatch-w2', 'camwatch-w1'))}",
        ]
        sur, cam = read_eve(a.run, "suricata"), read_eve(a.run, "camwatch")
        if sur or cam:
            md += [
                "",
                "Equal work (records in each tool's EVE output on this capture, checked by the script):",
                "",
                "| EVE records | Suricata | camwatch |",
                "|---|--:|--:|",
            ]
            for t in ["dns", "tls", "http", "flow", "alert"]:
                s = (sur or {}).get("types", {}).get(t, "–")
                c = (cam or {}).get("types", {}).get(t, "–")
                md.append(f"| {t} | {s} | {c} |")
            if sur:
                md += ["", "Suricata alerts: " + ", ".join(f"{k} ×{v}" for k, v in sorted(sur["alerts"].items()))]
            if cam:
                md += ["", "camwatch alerts: " + ", ".join(f"{k} ×{v}" for k, v in sorted(cam["alerts"].items()))]
            md += [
                "",
                "Suricata parses RTSP as HTTP (its `http` count includes the RTSP exchanges, which camwatch",
                "logs as `rtsp` events); camwatch also writes device, discovery, firmware, NTP and RTSP records",
                "Suricata has no counterpart for.",
            ]

    if flood_rows or meta.get("flood_skipped"):
        md += ["", "## Flow flood", ""]
        if flood_rows:
            md += [
                f"`{meta.get('flood_cmd', '?')}`: {int(meta.get('flood_packets', 0)):,} packets, "
                f"{int(meta.get('flood_bytes', 0)):,} bytes, one new flow each; the same camwatch "
                "options as above.",
                "",
            ]
            md += table(flood_rows)
            md += ["", f"- camwatch 2 workers / 1 worker: {fmt_ratio(ratio(flood_rows, 'camwatch-w2', 'camwatch-w1'))}"]
        else:
            md.append(f"Skipped: {meta['flood_skipped']}")

    if live or meta.get("live_skipped"):
        md += ["", "## Live capture", ""]
        if live:
            md += [
                f"`tcpreplay --intf1=<veth> --mbps=RATE` of the camera-mix capture into a veth pair whose "
                f"other end, in a network namespace, `camwatch run` captures ({meta.get('live_workers', '?')} "
                f"worker(s), {meta.get('live_config', 'default capture settings')}). Drops are camwatch's "
                "`camwatch_capture_dropped_packets_total` by reason; received is "
                "`camwatch_capture_packets_total`. The control replays the same rate to `tcpdump "
                "--immediate-mode -B <same buffer> -w /dev/null` on the same link: where it drops too, "
                "the host is the limit.",
                "",
                "| requested Mbit/s | achieved Mbit/s | sent | received | kernel drops | queue drops | interface drops | control: tcpdump received | control: tcpdump kernel drops |",
                "|--:|--:|--:|--:|--:|--:|--:|--:|--:|",
            ]
            for r in live:
                md.append(
                    f"| {r['req']} | {r['got']:,.0f} | {r['sent']:,} | {r['recv']:,} | {r['kernel']:,} | "
                    f"{r['queue']:,} | {r['iface']:,} | {num(r['td_recv'])} | {num(r['td_drop'])} |"
                )
            zero = [r for r in live if r["kernel"] == 0 and r["queue"] == 0 and r["recv"] >= r["sent"]]
            best = max(zero, key=lambda r: r["got"], default=None)
            if meta.get("live_notes"):
                md += ["", f"Note: {meta['live_notes']}."]
            md += [
                "",
                "Highest zero-drop rate (no kernel or queue drops, every packet received): "
                + (f"{best['got']:,.0f} Mbit/s achieved ({best['req']} requested)" if best else "none of the rates tried"),
            ]
        else:
            md.append(f"Skipped: {meta['live_skipped']}")

    # Targets of issue 14, judged on this run.
    def r(rows, tool):
        return rows.get(tool)

    t = []
    v = ratio(main_rows, "camwatch-w1", "suricata")
    t.append(("camwatch 1 worker ≥ 3× Suricata single packets/s (camera mix)", fmt_ratio(v), verdict(None if v is None else v >= 3)))
    v = ratio(main_rows, "camwatch-w1", "tcpdump")
    t.append(("camwatch 1 worker ≥ 0.75× tcpdump read rate (camera mix)", fmt_ratio(v), verdict(None if v is None else v >= 0.75)))
    v = ratio(flood_rows, "camwatch-w2", "camwatch-w1")
    measured = fmt_ratio(v)
    f1 = r(flood_rows, "camwatch-w1")
    if v is not None and f1 and f1["wall"] > 0:
        # One worker already keeps this many cores busy (capture, worker and analysis threads
        # run side by side); two workers cannot do better than the cores left over allow.
        busy = f1["cpu"] / f1["wall"]
        cores = os.cpu_count() or 1
        measured += f" (ceiling on this host: {cores} cores ÷ {busy:.2f} cores busy with 1 worker = {cores / busy:.2f}×)"
    t.append(("2 workers ≥ 1.8× 1 worker (many flows: the flood)", measured, verdict(None if v is None else v >= 1.8)))
    if f1:
        # The issue measured 23 kpps on the flood before this work.
        t.append(
            (
                "2M-flow flood ≥ 10× the 23,000 packets/s of before (230,000 packets/s, 1 worker)",
                f"{f1['pps']:,.0f} packets/s ({f1['pps'] / 23_000:.1f}×)",
                verdict(f1["pps"] >= 230_000),
            )
        )
    w1 = r(main_rows, "camwatch-w1")
    w2 = r(main_rows, "camwatch-w2")
    note = f" (2 workers: {w2['rss']:.1f})" if w2 else ""
    t.append(
        (
            "peak RSS ≤ 64 MiB, camera mix (1 worker)",
            "not run" if not w1 else f"{w1['rss']:.1f} MiB{note}",
            verdict(None if not w1 else w1["rss"] <= 64),
        )
    )
    f1 = r(flood_rows, "camwatch-w1")
    f2 = r(flood_rows, "camwatch-w2")
    note = f" (2 workers: {f2['rss']:.1f})" if f2 else ""
    t.append(
        (
            "peak RSS ≤ 256 MiB, 2M-flow flood (1 worker)",
            "not run" if not f1 else f"{f1['rss']:.1f} MiB{note}",
            verdict(None if not f1 else f1["rss"] <= 256),
        )
    )
    at = [x for x in live if x["req"] == "2000"]
    if at:
        x = at[0]
        measured = f"{x['kernel']:,} kernel drops at {x['got']:,.0f} Mbit/s achieved"
        # Drops below 2000 already fail it; no drops only count if the rate was reached.
        if x["got"] >= 0.95 * 2000 or x["kernel"] > 0:
            v = verdict(x["kernel"] == 0)
        else:
            v = "not measured"
        if x["got"] < 0.95 * 2000:
            measured += " (tcpreplay fell short of 2000 on this host)"
        t.append(("live: no kernel drops at 2000 Mbit/s", measured, v))
    else:
        t.append(("live: no kernel drops at 2000 Mbit/s", "not run", verdict(None)))

    md += ["", "## Targets", "", "| target | measured | verdict |", "|---|---|---|"]
    md += [f"| {a_} | {b_} | {c_} |" for a_, b_, c_ in t]
    md.append("")

    text = "\n".join(md)
    with open(a.out, "w", encoding="utf-8") as f:
        f.write(text)
    print(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
