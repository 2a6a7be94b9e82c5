#!/usr/bin/env python3
"""Counts the records of an EVE log (Suricata's eve.json or camwatch's event log) and checks
that the records the benchmark relies on are there, so the work compared is alike.

    eve_summary.py EVE --label NAME [--journal ALERTS.jsonl] [--require dns,tls,alert]
                   [--expect-alert TEXT]... [--json OUT.json]

Prints the count of each event type and of each alert (by camwatch rule id, else by Suricata
signature), and with --journal the camwatch alert journal's records by rule. Exits 1, naming
what is missing, when an event type in --require has no record or no alert's rule, signature
or signature id contains an --expect-alert text.
"""

import argparse
import collections
import json
import sys


def alert_name(rec):
    a = rec.get("alert") or {}
    rule = (a.get("metadata") or {}).get("camwatch_rule")
    if rule:
        return rule[0]
    return f'{a.get("signature_id", "?")} {a.get("signature", "?")}'


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("eve")
    ap.add_argument("--label", required=True)
    ap.add_argument("--journal")
    ap.add_argument("--require", default="dns,tls,alert")
    ap.add_argument("--expect-alert", action="append", default=[])
    ap.add_argument("--json")
    a = ap.parse_args()

    types = collections.Counter()
    alerts = collections.Counter()
    bad = 0
    with open(a.eve, encoding="utf-8") as f:
        for line in f:
            if not line.strip():
                continue
            try:
                rec = json.loads(line)
            except json.JSONDecodeError:
                bad += 1
                continue
            t = rec.get("event_type", "?")
            types[t] += 1
            if t == "alert":
                alerts[alert_name(rec)] += 1

    journal = collections.Counter()
    if a.journal:
        with open(a.journal, encoding="utf-8") as f:
            for line in f:
                if line.strip():
                    rec = json.loads(line)
                    journal[f'{rec["rule"]["id"]} ({rec.get("status", "?")})'] += 1

    print(f"{a.label}: {sum(types.values())} EVE records in {a.eve}")
    print("  " + ", ".join(f"{t} {n}" for t, n in sorted(types.items())))
    for name, n in sorted(alerts.items()):
        print(f"    alert {n:>5}  {name}")
    if a.journal:
        print(f"  alert journal: {sum(journal.values())} records")
        for name, n in sorted(journal.items()):
            print(f"    {n:>5}  {name}")

    problems = []
    if bad:
        problems.append(f"{bad} lines are not JSON")
    for t in filter(None, a.require.split(",")):
        if types[t] == 0:
            problems.append(f"no {t!r} records")
    for want in a.expect_alert:
        if not any(want in name for name in alerts):
            problems.append(f"no alert matching {want!r}")
    if a.json:
        with open(a.json, "w", encoding="utf-8") as f:
            json.dump(
                {"label": a.label, "types": types, "alerts": alerts, "journal": journal, "problems": problems},
                f,
                indent=1,
                sort_keys=True,
            )
    if problems:
        print(f"EVE CHECK FAILED for {a.label} ({a.eve}): " + "; ".join(problems), file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
