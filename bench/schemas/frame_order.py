"""Writes order.json as Confluent-framed Protobuf bytes of bench.Order
(order.proto): magic byte 0, the 4-byte schema id, the message-index array
([0], one 0 byte), the message. Encoded by hand (the wire format is small)
so the benchmark needs no protobuf package.

    python3 frame_order.py SCHEMA_ID order.json out.bin
"""

import datetime
import json
import sys


def varint(n):
    out = bytearray()
    while n > 0x7F:
        out.append((n & 0x7F) | 0x80)
        n >>= 7
    out.append(n)
    return bytes(out)


def key(field, wire):
    return varint(field << 3 | wire)


def vint(field, n):
    return key(field, 0) + varint(n) if n else b""


def ln(field, data):
    return key(field, 2) + varint(len(data)) + data if data else b""


def s(field, text):
    return ln(field, text.encode())


STATUS = {"new": 0, "paid": 1, "shipped": 2}
TIER = {"STANDARD": 0, "GOLD": 1}


def order(o):
    at = datetime.datetime.fromisoformat(o["placed_at"].replace("Z", "+00:00"))
    ts = vint(1, int(at.timestamp()))
    a = o["customer"]["address"]
    address = s(1, a["street"]) + s(2, a["city"]) + s(3, a["postcode"]) + s(4, a["country"])
    c = o["customer"]
    customer = s(1, c["name"]) + vint(2, TIER[c["tier"]]) + ln(3, address)
    out = s(1, o["id"]) + vint(2, STATUS[o["status"]]) + ln(3, ts) + s(4, o["email"])
    out += s(5, o["currency"]) + vint(6, o["total_cents"]) + ln(7, customer)
    for line in o["lines"]:
        out += ln(8, s(1, line["sku"]) + vint(2, line["qty"]) + vint(3, line["price_cents"])
                  + s(4, line["note"]))
    for t in o["tags"]:
        out += s(9, t)
    return out + s(10, o["note"])


if __name__ == "__main__":
    schema_id, src, dst = int(sys.argv[1]), sys.argv[2], sys.argv[3]
    body = order(json.load(open(src)))
    open(dst, "wb").write(b"\x00" + schema_id.to_bytes(4, "big") + b"\x00" + body)
