"""One JetStream API request, as an operator's tool would make it. Input on
stdin: {"servers": [...], "subject": "CONSUMER.INFO.S.c", "body": {...} or
null}. Prints the server's answer; exits 1 if it is an error."""
import asyncio
import json
import sys

import nats


async def main():
    req = json.load(sys.stdin)
    nc = await nats.connect(req["servers"])
    body = req.get("body")
    payload = b"" if body is None else json.dumps(body).encode()
    r = await nc.request("$JS.API." + req["subject"], payload, timeout=10)
    print(r.data.decode())
    await nc.close()
    sys.exit(1 if "error" in json.loads(r.data) else 0)


asyncio.run(main())
