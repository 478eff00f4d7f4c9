"""Creates a JetStream stream from a JSON config, as a user (or another
tool) might have before the gateway first started. Input on stdin:
{"servers": [...], "config": {...}}. Prints the server's answer."""
import asyncio
import json
import sys

import nats


async def main():
    req = json.load(sys.stdin)
    nc = await nats.connect(req["servers"])
    cfg = req["config"]
    r = await nc.request("$JS.API.STREAM.CREATE." + cfg["name"], json.dumps(cfg).encode(), timeout=10)
    print(r.data.decode())
    await nc.close()
    answer = json.loads(r.data)
    sys.exit(1 if "error" in answer else 0)


asyncio.run(main())
