"""Switchyard's registry with Protobuf, driven by Confluent's Python client
against the real gateway: ProtobufSerializer registers the imported file as
a reference (its own subject) and then the schema (both as base64
FileDescriptorProtos, as the client sends them), frames the message
(magic byte, schema id, message-index array, message), the gateway's
ingest accepts the bytes (202) and refuses broken ones (422), and
ProtobufDeserializer fetches the writer schema by id (format=serialized)
and decodes the bytes. A fresh client (no cache) reads the schema back as
`.proto` text, as Confluent's registry answers it, and looking that text up
under the subject finds the id the descriptor got.

The message classes are built at run time from descriptors
(descriptor_pb2 and message_factory), so no protoc is needed.

Run by tests/tests/e2e/registry_client.rs with SWITCHYARD_REGISTRY_URL and
SWITCHYARD_INGEST_URL (topic `proto-orders`, subject `proto-orders-value`).
Needs confluent-kafka[schemaregistry], protobuf and googleapis-common-protos.
Prints ALL OK at the end.
"""

import os
import urllib.error
import urllib.request

from google.protobuf import descriptor_pb2, descriptor_pool, timestamp_pb2  # noqa: F401
from google.protobuf.message_factory import GetMessageClass

from confluent_kafka.schema_registry import Schema, SchemaRegistryClient
from confluent_kafka.schema_registry.protobuf import ProtobufDeserializer, ProtobufSerializer
from confluent_kafka.serialization import MessageField, SerializationContext

BASE = os.environ["SWITCHYARD_REGISTRY_URL"]
INGEST = os.environ["SWITCHYARD_INGEST_URL"]
TOPIC = "proto-orders"

F = descriptor_pb2.FieldDescriptorProto


def classes():
    """shop.Order (in shop/order.proto) importing shop.Money (shop/money.proto)
    and google.protobuf.Timestamp (a well-known type, never registered)."""
    pool = descriptor_pool.DescriptorPool()
    ts = descriptor_pb2.FileDescriptorProto()
    timestamp_pb2.DESCRIPTOR.CopyToProto(ts)
    pool.Add(ts)
    money = descriptor_pb2.FileDescriptorProto(name="shop/money.proto", package="shop", syntax="proto3")
    m = money.message_type.add(name="Money")
    m.field.add(name="cents", number=1, type=F.TYPE_INT64, label=F.LABEL_OPTIONAL)
    pool.Add(money)
    order = descriptor_pb2.FileDescriptorProto(
        name="shop/order.proto", package="shop", syntax="proto3",
        dependency=["shop/money.proto", "google/protobuf/timestamp.proto"])
    o = order.message_type.add(name="Order")
    o.field.add(name="id", number=1, type=F.TYPE_STRING, label=F.LABEL_OPTIONAL)
    o.field.add(name="qty", number=2, type=F.TYPE_INT32, label=F.LABEL_OPTIONAL)
    o.field.add(name="total", number=3, type=F.TYPE_MESSAGE, label=F.LABEL_OPTIONAL,
                type_name=".shop.Money")
    o.field.add(name="at", number=4, type=F.TYPE_MESSAGE, label=F.LABEL_OPTIONAL,
                type_name=".google.protobuf.Timestamp")
    pool.Add(order)
    return GetMessageClass(pool.FindMessageTypeByName("shop.Order"))


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
    Order = classes()
    client = SchemaRegistryClient({"url": BASE})
    ctx = SerializationContext(TOPIC, MessageField.VALUE)
    ser = ProtobufSerializer(Order, client, {"use.deprecated.format": False})
    order = Order(id="p1", qty=5)
    order.total.cents = 250
    order.at.seconds = 1_700_000_000
    data = ser(order, ctx)
    assert data[0] == 0, data[:6]
    schema_id = int.from_bytes(data[1:5], "big")
    # Order is the file's first message: the [0] shortcut, one 0 byte.
    assert data[5] == 0, data[:6]

    latest = client.get_latest_version(TOPIC + "-value")
    assert latest.schema_id == schema_id, (latest.schema_id, schema_id)
    assert latest.schema.schema_type == "PROTOBUF", latest.schema.schema_type
    refs = [(r.name, r.subject) for r in latest.schema.references]
    assert refs == [("shop/money.proto", "shop/money.proto")], refs
    assert client.get_subjects() == ["proto-orders-value", "shop/money.proto"], client.get_subjects()

    for ct in ("application/x-protobuf", "application/octet-stream"):
        status = post(data, ct)
        assert status == 202, (ct, status)
    # Field 9 is not in shop.Order: refused.
    assert post(data + b"\x48\x01", "application/x-protobuf") == 422
    assert post(data[:4], "application/x-protobuf") == 422

    # A new client: the first one caches what it registered (base64).
    fresh = SchemaRegistryClient({"url": BASE})
    got = fresh.get_schema(schema_id)
    assert got.schema_type == "PROTOBUF", got.schema_type
    text = got.schema_str
    assert text.startswith('syntax = "proto3";\npackage shop;\n'), text
    for line in ('import "shop/money.proto";', 'import "google/protobuf/timestamp.proto";',
                 "message Order {", ".shop.Money total = 3;", ".google.protobuf.Timestamp at = 4;"):
        assert line in text, (line, text)
    assert latest.schema.schema_str == text, latest.schema.schema_str
    found = fresh.lookup_schema(TOPIC + "-value", Schema(text, "PROTOBUF", got.references))
    assert found.schema_id == schema_id, (found.schema_id, schema_id)

    de = ProtobufDeserializer(Order, {"use.deprecated.format": False}, schema_registry_client=client)
    back = de(data, ctx)
    assert back == order, back
    print("ALL OK")


if __name__ == "__main__":
    main()
