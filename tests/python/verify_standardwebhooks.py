#!/usr/bin/env python3
"""Verify one Standard Webhooks signature with the reference Python library.

Switchyard's tests use this as an independent peer: if the real
`standardwebhooks` package accepts what Switchyard signs, any receiver will.

Input, either as a JSON object on stdin:
    {"secret": "whsec_...", "id": "...", "timestamp": "1700000000",
     "signature": "v1,... v1,...", "body": "..."}
or as five arguments in that order: SECRET ID TIMESTAMP SIGNATURE BODY.

Exit status: 0 if the signature verifies, 1 if it does not, 2 on bad input.
The library checks the timestamp against the current clock (5 minutes).
"""

import json
import sys

from standardwebhooks import Webhook
from standardwebhooks.webhooks import WebhookVerificationError

FIELDS = ("secret", "id", "timestamp", "signature", "body")


def read_input():
    if len(sys.argv) == 1 + len(FIELDS):
        return dict(zip(FIELDS, sys.argv[1:]))
    if len(sys.argv) != 1:
        raise ValueError(f"expected {len(FIELDS)} arguments ({' '.join(FIELDS)}) or JSON on stdin")
    data = json.load(sys.stdin)
    missing = [f for f in FIELDS if not isinstance(data.get(f), str)]
    if missing:
        raise ValueError(f"missing or non-string fields: {', '.join(missing)}")
    return data


def main():
    try:
        args = read_input()
    except (ValueError, json.JSONDecodeError) as e:
        print(f"bad input: {e}", file=sys.stderr)
        return 2
    headers = {
        "webhook-id": args["id"],
        "webhook-timestamp": args["timestamp"],
        "webhook-signature": args["signature"],
    }
    body = args["body"].encode("utf-8")
    try:
        wh = Webhook(args["secret"])
        try:
            # Bodies need not be JSON; older releases lack the keyword.
            wh.verify(body, headers, json_parse=False)
        except TypeError:
            wh.verify(body, headers)
    except WebhookVerificationError as e:
        print(f"rejected: {e}", file=sys.stderr)
        return 1
    except Exception as e:  # a malformed secret or header is a rejection too
        print(f"rejected ({type(e).__name__}): {e}", file=sys.stderr)
        return 1
    print("verified")
    return 0


if __name__ == "__main__":
    sys.exit(main())
