#!/usr/bin/env python3
"""Validates EVE JSON lines against Suricata 7's EVE JSON Schema.

camwatch's extensions are allowed and nothing else:
- the top-level keys `camwatch`, `dest_name` and `encapsulation`;
- event types Suricata does not define (`device`, `firmware`, `discovery`, `rtsp`, `ntp`,
  `beacon`, `baichuan`, ...): their own object, named after the type.
Every other key, and every field of a type Suricata defines, must be as the schema says.

Usage: eve_schema.py SCHEMA EVENTS...   Prints one line per violation; exits 1 if any.
"""
import json
import sys

import jsonschema

EXTENSION_KEYS = {"camwatch", "dest_name", "encapsulation"}


def main():
    schema = json.load(open(sys.argv[1]))
    validator = jsonschema.Draft7Validator(schema)
    suricata_types = set(schema["properties"].keys())
    bad = 0
    seen = {}
    for path in sys.argv[2:]:
        for n, line in enumerate(open(path), 1):
            event = json.loads(line)
            kind = event.get("event_type")
            seen[kind] = seen.get(kind, 0) + 1
            checked = {k: v for k, v in event.items() if k not in EXTENSION_KEYS}
            if kind not in suricata_types:
                checked.pop(kind, None)
            for err in validator.iter_errors(checked):
                where = "/".join(str(p) for p in err.absolute_path)
                print(f"{path}:{n}: {kind}: {where}: {err.message[:300]}")
                bad += 1
    print("checked " + json.dumps(seen, sort_keys=True), file=sys.stderr)
    sys.exit(1 if bad else 0)


if __name__ == "__main__":
    main()
