#!/usr/bin/env python3
"""Sign a request body with the reference Standard Webhooks library.

Switchyard's ingest tests use this as a real sender: the headers it prints
are what any Standard Webhooks producer would send.

Input: JSON on stdin {"secret": "whsec_...", "id": "msg_...", "body": "...",
"age_seconds": 0}. Output: a JSON object of the three headers.
"""

import datetime
import json
import sys

from standardwebhooks import Webhook


def main():
    data = json.load(sys.stdin)
    ts = datetime.datetime.now(tz=datetime.timezone.utc) - datetime.timedelta(
        seconds=int(data.get("age_seconds", 0))
    )
    signature = Webhook(data["secret"]).sign(data["id"], ts, data["body"])
    json.dump(
        {
            "webhook-id": data["id"],
            "webhook-timestamp": str(int(ts.timestamp())),
            "webhook-signature": signature,
        },
        sys.stdout,
    )


if __name__ == "__main__":
    main()
