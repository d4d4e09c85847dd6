"""scim2-tester, the SCIM 2.0 compliance checker, against `edge-authz serve`'s SCIM endpoint.

Runs every check of scim2-tester's `check_server` (discovery, the methods each endpoint takes,
create, read, list, attribute projection, replace, delete, and PATCH add/remove/replace of every
attribute of User and Group) through scim2-client's SyncSCIMClient over httpx2, and prints one
JSON line per check, `{"status", "title", "resourceType", "reason"}`, then `{"summary": {STATUS:
count}}`. It judges nothing itself: the exit code is 0 once every check ran (2 if the checker
could not run), and tests/js/serve-scim.test.mjs decides which results are acceptable.

    python compliance.py --scim http://127.0.0.1:8788/scim/v2/beta --token TOKEN

The checker creates and deletes resources with random names: give it a tenant of its own.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections import Counter

import httpx2
from scim2_client.engines.httpx2 import SyncSCIMClient
from scim2_tester import check_server


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--scim", required=True, help="the tenant's SCIM base, e.g. http://127.0.0.1:8788/scim/v2/beta")
    ap.add_argument("--token", required=True, help="a bearer token for the SCIM API")
    ap.add_argument("--max-reason", type=int, default=400, help="cut each reason to this many characters")
    args = ap.parse_args()
    http = httpx2.Client(base_url=args.scim.rstrip("/"), headers={"Authorization": f"Bearer {args.token}"},
                         timeout=30.0)
    client = SyncSCIMClient(http)
    try:
        results = check_server(client)
    except Exception as exc:  # the checker itself failed, not one of its checks
        print(json.dumps({"error": f"{type(exc).__name__}: {exc}"}), flush=True)
        print(f"compliance.py: scim2-tester could not run: {type(exc).__name__}: {exc}", file=sys.stderr)
        return 2
    for r in results:
        reason = (r.reason or "").strip()
        if len(reason) > args.max_reason:
            reason = reason[: args.max_reason] + "..."
        print(json.dumps({"status": r.status.name, "title": r.title, "resourceType": r.resource_type,
                          "reason": reason}), flush=True)
    print(json.dumps({"summary": dict(Counter(r.status.name for r in results))}), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
