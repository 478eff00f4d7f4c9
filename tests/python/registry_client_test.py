"""Switchyard's schema registry driven by Confluent's own Python client.

Run by gateway/src/registry/tests.rs (router on a port, with a stand-in
ingest route) and usable against a running gateway:

    SWITCHYARD_REGISTRY_URL=http://127.0.0.1:8080/registry \
    SWITCHYARD_INGEST_URL=http://127.0.0.1:8080/v1/topics \
    python tests/python/registry_client_test.py

With SWITCHYARD_INGEST_URL set, wire-format payloads made by the client's
AvroSerializer are POSTed to `{INGEST_URL}/{topic}/events` and must be
accepted (202), and fastavro-made bad payloads must be refused (422). The
topic (SWITCHYARD_REGISTRY_TOPIC, default `reg-orders`) must validate
against the subject `<topic>-value`, the client's default TopicNameStrategy.

Needs: confluent-kafka[schemaregistry], fastavro. Prints ALL OK at the end.
"""

import io
import json
import os
import struct
import sys
import urllib.error
import urllib.request
import uuid

import fastavro
from confluent_kafka.schema_registry import Schema, SchemaRegistryClient
from confluent_kafka.schema_registry.avro import AvroSerializer
from confluent_kafka.schema_registry.error import SchemaRegistryError
from confluent_kafka.serialization import MessageField, SerializationContext

BASE = os.environ["SWITCHYARD_REGISTRY_URL"]
INGEST = os.environ.get("SWITCHYARD_INGEST_URL")
TOPIC = os.environ.get("SWITCHYARD_REGISTRY_TOPIC", "reg-orders")
SUBJECT = TOPIC + "-value"
# Unique per run, so the script can run twice against one gateway.
OTHER = "reg-audit-" + uuid.uuid4().hex[:8]

V1 = {
    "type": "record",
    "name": "Order",
    "namespace": "shop",
    "fields": [
        {"name": "id", "type": "long"},
        {"name": "amount", "type": "int"},
    ],
}
# Adds an optional field: compatible both ways.
V2 = {
    "type": "record",
    "name": "Order",
    "namespace": "shop",
    "fields": [
        {"name": "id", "type": "long"},
        {"name": "amount", "type": "int"},
        {"name": "note", "type": ["null", "string"], "default": None},
    ],
}
# Adds a required field: not backward compatible.
REQUIRED = {
    "type": "record",
    "name": "Order",
    "namespace": "shop",
    "fields": [
        {"name": "id", "type": "long"},
        {"name": "amount", "type": "int"},
        {"name": "currency", "type": "string"},
    ],
}

checks = 0


def check(cond, what):
    global checks
    if not cond:
        print("FAIL:", what)
        sys.exit(1)
    checks += 1


def expect_error(code, fn, *args, **kwargs):
    try:
        fn(*args, **kwargs)
    except SchemaRegistryError as e:
        check(e.error_code == code, f"{fn.__name__}: error_code {e.error_code} != {code} ({e})")
        check(e.http_status_code == int(str(code)[:3]), f"{fn.__name__}: http status {e.http_status_code}")
        return
    check(False, f"{fn.__name__} should have failed with {code}")


def avro_schema(d):
    return Schema(json.dumps(d), "AVRO")


def post(topic, body, content_type):
    req = urllib.request.Request(
        f"{INGEST}/{topic}/events", data=body, method="POST", headers={"content-type": content_type}
    )
    try:
        with urllib.request.urlopen(req) as r:
            return r.status
    except urllib.error.HTTPError as e:
        return e.code


def fastavro_datum(schema, record):
    buf = io.BytesIO()
    fastavro.schemaless_writer(buf, fastavro.parse_schema(schema), record)
    return buf.getvalue()


def main():
    client = SchemaRegistryClient({"url": BASE})
    check(client.get_subjects() is not None, "get_subjects")

    # Register, idempotently; the same schema under another subject shares the id.
    id1 = client.register_schema(SUBJECT, avro_schema(V1))
    check(isinstance(id1, int) and id1 > 0, "register returns an id")
    fresh = SchemaRegistryClient({"url": BASE})  # no client-side cache
    check(fresh.register_schema(SUBJECT, Schema(json.dumps(V1, indent=2), "AVRO")) == id1, "same schema, same id")
    check(fresh.register_schema(OTHER, avro_schema(V1)) == id1, "same id under another subject")

    got = fresh.get_schema(id1)
    check(json.loads(got.schema_str) == V1, "get_schema returns the schema")
    check(got.schema_type in (None, "AVRO"), "schema type AVRO")

    latest = fresh.get_latest_version(SUBJECT)
    check(latest.schema_id == id1, "latest id")
    first_version = latest.version
    check(first_version >= 1, "latest version")
    found = fresh.lookup_schema(SUBJECT, avro_schema(V1))
    check(found.version == first_version and found.schema_id == id1, "lookup_schema")
    check(fresh.get_version(SUBJECT, first_version).schema_id == id1, "get_version")
    check(fresh.get_versions(SUBJECT)[-1] == first_version, "get_versions")
    check("AVRO" in fresh.get_schema_types(), "schema types")

    # Compatibility (BACKWARD by default).
    check(fresh.test_compatibility(SUBJECT, avro_schema(V2)) is True, "v2 compatible")
    check(fresh.test_compatibility(SUBJECT, avro_schema(REQUIRED)) is False, "required field incompatible")
    check(
        fresh.test_compatibility(SUBJECT, avro_schema(REQUIRED), version=first_version, verbose=True) is False,
        "verbose compatibility against a version",
    )
    expect_error(409, fresh.register_schema, SUBJECT, avro_schema(REQUIRED))

    fresh.set_compatibility(OTHER, "FORWARD")
    check(fresh.get_compatibility(OTHER) == "FORWARD", "subject level set")
    check(fresh.register_schema(OTHER, avro_schema(REQUIRED)) > 0, "FORWARD lets a required field in")
    check(fresh.get_compatibility() in ("BACKWARD", "NONE", "FULL", "FORWARD"), "global level readable")

    id2 = fresh.register_schema(SUBJECT, avro_schema(V2))
    check(id2 != id1, "a new schema gets a new id")
    # The client caches latest versions: ask with a new one.
    check(SchemaRegistryClient({"url": BASE}).get_latest_version(SUBJECT).schema_id == id2, "latest is v2")

    # Confluent error codes through the client.
    expect_error(40403, fresh.get_schema, 987654)
    expect_error(40401, fresh.get_latest_version, "no-such-subject-" + uuid.uuid4().hex)
    expect_error(40402, fresh.get_version, SUBJECT, 4242)
    expect_error(40403, fresh.lookup_schema, SUBJECT, avro_schema({"type": "enum", "name": "X", "symbols": ["A"]}))
    expect_error(42201, fresh.register_schema, SUBJECT, Schema('{"type": "record", "name": "Broken"}', "AVRO"))
    # A JSON schema under an Avro subject is a change of type: incompatible, as in Confluent.
    expect_error(409, fresh.register_schema, SUBJECT, Schema('{"type": "object"}', "JSON"))
    expect_error(42203, fresh.set_compatibility, SUBJECT, "SIDEWAYS")

    if INGEST:
        ctx = SerializationContext(TOPIC, MessageField.VALUE)
        ser_v2 = AvroSerializer(fresh, json.dumps(V2))
        payload = ser_v2({"id": 1, "amount": 5, "note": "hi"}, ctx)
        check(payload[0] == 0 and struct.unpack(">I", payload[1:5])[0] == id2, "wire format header")
        check(post(TOPIC, payload, "application/vnd.apache.avro+binary") == 202, "v2 Avro accepted")
        check(post(TOPIC, payload, "application/octet-stream") == 202, "octet-stream accepted")
        # Written with v1 (an older registered schema): resolves to v2.
        ser_v1 = AvroSerializer(fresh, json.dumps(V1), conf={"auto.register.schemas": False, "use.latest.version": False})
        payload_v1 = ser_v1({"id": 2, "amount": 6}, ctx)
        check(struct.unpack(">I", payload_v1[1:5])[0] == id1, "v1 payload names id1")
        check(post(TOPIC, payload_v1, "application/vnd.apache.avro+binary") == 202, "v1 Avro accepted")

        header = b"\x00" + struct.pack(">I", id2)
        # A datum of another shape under v2's id: undecodable.
        wrong = fastavro_datum(
            {"type": "record", "name": "W", "fields": [{"name": "s", "type": "string"}]},
            {"s": "this is not an order, it is a long string"},
        )
        check(post(TOPIC, header + wrong, "application/vnd.apache.avro+binary") == 422, "wrong datum refused")
        good = fastavro_datum(V2, {"id": 3, "amount": 1, "note": None})
        check(post(TOPIC, header + good, "application/vnd.apache.avro+binary") == 202, "fastavro good datum accepted")
        check(post(TOPIC, header + good[:-1], "application/vnd.apache.avro+binary") == 422, "truncated refused")
        check(post(TOPIC, header + good + b"\x00", "application/vnd.apache.avro+binary") == 422, "trailing refused")
        unknown = b"\x00" + struct.pack(">I", 987654) + good
        check(post(TOPIC, unknown, "application/vnd.apache.avro+binary") == 422, "unknown id refused")
        check(post(TOPIC, b"\x01" + header[1:] + good, "application/vnd.apache.avro+binary") == 422, "bad magic refused")

        check(post(TOPIC, json.dumps({"id": 4, "amount": 2}).encode(), "application/json") == 202, "JSON accepted")
        check(post(TOPIC, json.dumps({"id": "4", "amount": 2}).encode(), "application/json") == 422, "bad JSON refused")
        check(post(TOPIC, b"id=4", "text/plain") == 415, "other content type refused")

    # Deletes.
    deleted = fresh.delete_subject(OTHER)
    check(len(deleted) == 2, f"soft delete returns the versions ({deleted})")
    check(OTHER not in fresh.get_subjects(), "soft-deleted subject hidden")
    check(fresh.delete_subject(OTHER, permanent=True) == deleted, "permanent delete after soft")
    expect_error(40401, fresh.get_latest_version, OTHER)
    expect_error(40401, fresh.delete_subject, OTHER)

    print(f"ALL OK ({checks} checks)")


if __name__ == "__main__":
    main()
