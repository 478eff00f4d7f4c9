"""Switchyard's registry with JSON Schema, driven by Confluent's Python
client: JSONSerializer registers the schema and frames payloads (magic byte,
schema id, JSON), the stand-in ingest accepts them (202) and refuses a
payload that breaks the schema (422), and JSONDeserializer fetches the
schema by id from the registry and decodes the bytes.

Run by gateway/switchyard/src/registry_api/tests.rs with
SWITCHYARD_REGISTRY_URL and SWITCHYARD_INGEST_URL (topic `json-orders`,
subject `json-orders-value`). Needs confluent-kafka[schemaregistry] and
jsonschema. Prints ALL OK at the end.
"""

import json
import os
import urllib.error
import urllib.request

from confluent_kafka.schema_registry import SchemaRegistryClient
from confluent_kafka.schema_registry.json_schema import JSONDeserializer, JSONSerializer
from confluent_kafka.serialization import MessageField, SerializationContext

BASE = os.environ["SWITCHYARD_REGISTRY_URL"]
INGEST = os.environ["SWITCHYARD_INGEST_URL"]
TOPIC = "json-orders"

SCHEMA = json.dumps({
    "$schema": "http://json-schema.org/draft-07/schema#",
    "title": "Order",
    "type": "object",
    "properties": {
        "id": {"type": "integer"},
        "status": {"enum": ["new", "paid"]},
        "email": {"type": "string", "format": "email"},
    },
    "required": ["id", "status"],
})


def post(body, content_type):
    req = urllib.request.Request(
        f"{INGEST}/{TOPIC}/events", data=body, method="POST",
        headers={"content-type": content_type})
    try:
        with urllib.request.urlopen(req) as r:
            return r.status
    except urllib.error.HTTPError as e:
        return e.code


def main():
    client = SchemaRegistryClient({"url": BASE})
    ctx = SerializationContext(TOPIC, MessageField.VALUE)
    ser = JSONSerializer(SCHEMA, client)
    order = {"id": 7, "status": "paid", "email": "a@example.com"}
    data = ser(order, ctx)
    assert data[0] == 0, data[:5]
    schema_id = int.from_bytes(data[1:5], "big")
    latest = client.get_latest_version(TOPIC + "-value")
    assert latest.schema_id == schema_id, (latest.schema_id, schema_id)
    assert latest.schema.schema_type == "JSON", latest.schema.schema_type
    assert post(data, "application/octet-stream") == 202
    assert post(json.dumps(order).encode(), "application/json") == 202
    bad = data[:5] + json.dumps({"id": 7, "status": "lost"}).encode()
    assert post(bad, "application/octet-stream") == 422

    de = JSONDeserializer(None, schema_registry_client=client)
    back = de(data, ctx)
    assert back == order, back
    print("ALL OK")


if __name__ == "__main__":
    main()
