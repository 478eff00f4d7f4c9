"""Registry writes behind an API token, driven by Confluent's Python client.

Run by tests/tests/auth.rs against a gateway whose `[auth]` has an admin
token and a token without `admin`:

    SWITCHYARD_REGISTRY_URL=http://127.0.0.1:8080/registry \
    SWITCHYARD_ADMIN_TOKEN=... SWITCHYARD_OTHER_TOKEN=... \
    python tests/python/registry_auth_test.py

The client sends `basic.auth.user.info = "user:TOKEN"` as HTTP Basic auth;
the gateway takes the password as the token. Prints ALL OK at the end.
"""

import os
import uuid

from confluent_kafka.schema_registry import Schema, SchemaRegistryClient
from confluent_kafka.schema_registry.error import SchemaRegistryError

BASE = os.environ["SWITCHYARD_REGISTRY_URL"]
ADMIN = os.environ["SWITCHYARD_ADMIN_TOKEN"]
OTHER = os.environ["SWITCHYARD_OTHER_TOKEN"]
SUBJECT = "auth-" + uuid.uuid4().hex[:8] + "-value"
SCHEMA = Schema(
    '{"type": "record", "name": "Ping", "fields": [{"name": "n", "type": "long"}]}',
    "AVRO",
)


def client(userinfo=None):
    conf = {"url": BASE, "max.retries": 0}
    if userinfo is not None:
        conf["basic.auth.user.info"] = userinfo
    return SchemaRegistryClient(conf)


def refused(c, status, code):
    try:
        c.register_schema(SUBJECT, SCHEMA)
    except SchemaRegistryError as e:
        assert e.http_status_code == status, (e.http_status_code, e.error_message)
        assert e.error_code == code, (e.error_code, e.error_message)
        return e.error_message
    raise AssertionError(f"registering succeeded; expected {status}")


# No credentials, a wrong token, a token without `admin`: refused in
# Confluent's error shape, which the client turns into SchemaRegistryError.
message = refused(client(), 401, 40101)
assert "token" in message, message
refused(client("user:not-a-real-token-0000"), 401, 40101)
message = refused(client("ci:" + OTHER), 403, 40301)
assert "admin" in message, message

# The admin token as the Basic password (any user name): writes work.
admin = client("anyone:" + ADMIN)
schema_id = admin.register_schema(SUBJECT, SCHEMA)
assert schema_id > 0, schema_id

# The client's bearer mode (a static token) works as well.
bearer = SchemaRegistryClient(
    {
        "url": BASE,
        "max.retries": 0,
        "bearer.auth.credentials.source": "STATIC_TOKEN",
        "bearer.auth.token": ADMIN,
        "bearer.auth.logical.cluster": "unused",
    }
)
assert bearer.register_schema(SUBJECT, SCHEMA) == schema_id

# Reads and lookups stay open without credentials.
anonymous = client()
assert SUBJECT in anonymous.get_subjects()
found = anonymous.lookup_schema(SUBJECT, SCHEMA)
assert found.schema_id == schema_id, (found.schema_id, schema_id)
assert anonymous.test_compatibility(SUBJECT, SCHEMA) is True

# Deleting is a write: refused anonymously, allowed with the token.
try:
    anonymous.delete_subject(SUBJECT)
    raise AssertionError("anonymous delete succeeded")
except SchemaRegistryError as e:
    assert e.http_status_code == 401, e.http_status_code
assert admin.delete_subject(SUBJECT) == [1]

print("ALL OK")
