"""The SDK natively: the loop, the event view, the verdict builder, config, logs."""

import datetime

import pytest

from switchyard_sdk import Config, ConfigError, Plugin, Verdict, export, json_pointer, log
from switchyard_sdk import _export
from switchyard_sdk.testing import (Batch, Err, MalformedVerdicts, Ok, WitVerdict, decode_verdicts,
                                    encode_batch, event, run)
from switchyard_sdk.event import FIELD, RECORD, Event

#: The verdict buffer of the contract's doc, byte for byte: the Rust and
#: TypeScript SDKs' tests encode the same, and the gateway's decoder reads it.
GOLDEN = bytes.fromhex(
    "040000000003020000000100000061020000006263070104000000626f6f6d000000fc020000007b7d0100000001"
    "00000068010000007601000000740500000000000000010000006b0100000001000000780100000079")


def view(batch, i):
    return Event(batch.data, batch.fields, RECORD.unpack_from(batch.events, i * RECORD.size))


class Echo(Plugin):
    def handle(self, e):
        if e.header("x-fail"):
            raise KeyError("no such thing")
        if e.header("x-none"):
            return None
        if e.header("x-wrong"):
            return "billing"
        return Verdict.route(e.topic).attribute("seen", e.id)


def test_each_event_gets_its_own_result_and_an_exception_fails_only_its_event():
    out = run(Echo, {}, [
        event({"a": 1}, topic="orders", id="e1"),
        event({}, headers={"X-Fail": "1"}),
        event({}, headers={"x-none": "1"}),
        event({}, headers={"x-wrong": "1"}),
    ])
    assert isinstance(out[0], Ok)
    assert out[0].value.routes == ["orders"]
    assert out[0].value.attributes == [("seen", "e1")]
    assert out[1] == Err("KeyError: 'no such thing'")
    assert out[2] == Ok(out[2].value) and out[2].value.routes is None
    assert out[3] == Err("TypeError: handle returned str, not a Verdict")


def test_the_default_init_refuses_config_keys_and_init_errors_name_the_key():
    with pytest.raises(Err) as refused:
        run(Echo, {"x": "1"}, [])
    assert refused.value.value == "unknown config key 'x' (known keys: none)"

    class Needs(Plugin):
        def init(self, config):
            self.n = config.require("n")

        def handle(self, e):
            return Verdict.keep()

    with pytest.raises(Err) as refused:
        run(Needs, {}, [])
    assert refused.value.value == "config key 'n' is required"


def test_the_event_view_reads_texts_headers_attributes_and_json_lazily():
    batch = encode_batch([
        event({"order": {"items": [{"sku": "a/b"}]}, "t~x": 2}, topic="orders", id="e1",
              headers=[("X-A", "1"), ("x-a", "2")], attributes={"k": "v"}, received_at_ms=5),
        event(text="plain"),
    ])
    e = view(batch, 0)
    assert e._cache == {}
    assert (e.id, e.topic, e.received_at_ms, e.content_type) == ("e1", "orders", 5, "application/json")
    assert "headers" not in e._cache
    assert e.header("X-a") == "1"
    assert e.headers() == [("x-a", "1"), ("x-a", "2")]
    assert e.attribute("k") == "v" and e.attribute("z", "d") == "d"
    assert e.json_at("/order/items/0/sku") == "a/b"
    assert e.json_at("/t~0x") == 2
    assert e.json_at("/order/items/1", "none") == "none"
    plain = view(batch, 1)
    assert plain.json() is None and plain.text() == "plain" and plain.payload == b"plain"


def test_json_pointers_follow_rfc_6901():
    doc = {"a/b": 1, "m~n": 2, "l": [10, 20], "": 3}
    assert json_pointer(doc, "") == doc
    assert json_pointer(doc, "/a~1b") == 1
    assert json_pointer(doc, "/m~0n") == 2
    assert json_pointer(doc, "/l/1") == 20
    assert json_pointer(doc, "/l/01") is None
    assert json_pointer(doc, "/") == 3
    assert json_pointer(doc, "nope") is None


def test_the_verdict_builder_has_defaults_and_checks_priority():
    assert Verdict.keep().as_dict() == {}
    assert Verdict.drop().get_routes() == []
    v = (Verdict.route("a", "b").priority(9).json_payload({"x": 1}).delay(datetime.timedelta(seconds=2))
         .ordering_key("k").attribute("n", 1).attribute("n", 2))
    assert v.as_dict() == {
        "routes": ["a", "b"], "priority": 9, "payload": b'{"x":1}', "content_type": "application/json",
        "delay_ms": 2000, "ordering_key": "k", "attributes": [("n", "2")],
    }
    assert Verdict.route(["a"]) == Verdict.route("a")
    for bad in (10, -1, "3", 2.0, True):
        with pytest.raises(ValueError, match="priority must be an integer 0-9"):
            Verdict.keep().priority(bad)
    base = Verdict.keep()
    base.priority(3)
    assert base.get_priority() is None, "builders return a new verdict"


def test_header_sets_one_header_on_a_copy_of_the_events_headers():
    class SetHeader(Plugin):
        def handle(self, e):
            return Verdict.keep().header("X-Tenant", "t1").header("x-drop", None)

    [r] = run(SetHeader, {}, [event({}, headers={"x-a": "1", "x-tenant": "old", "x-drop": "y"})])
    assert r.value.headers == [("x-a", "1"), ("x-tenant", "t1")]
    v = Verdict.keep().headers({"A": "1"}).header("b", "2")
    assert v.get_headers() == [("a", "1"), ("b", "2")]


def test_config_helpers():
    c = Config({"n": "3", "on": "yes", "list": "a, b,,c", "bad": "x"})
    assert c.get("n") == "3" and c.get("m", "d") == "d"
    assert c.get_int("n") == 3 and c.get_bool("on") is True
    assert c.list("list") == ["a", "b", "c"]
    with pytest.raises(ConfigError, match="'bad': 'x' is not an integer"):
        c.get_int("bad")
    with pytest.raises(ConfigError, match="unknown config key 'bad'"):
        c.deny_unknown("n", "on", "list")
    c.deny_unknown(["n", "on", "list", "bad"])


def test_logging_natively_keeps_the_lines():
    log.records.clear()
    log.info("Routed.", destination="billing", n=2)
    assert log.records == [("info", "Routed.", {"destination": "billing", "n": "2"})]
    with pytest.raises(ValueError):
        log.log("loud", "x")


def test_export_takes_only_a_plugin_class():
    with pytest.raises(TypeError):
        export(object)
    assert export(Echo).plugin_class is Echo


def test_verdicts_encode_to_the_documented_bytes_and_decode_back():
    out = bytearray(b"\x04\0\0\0")
    _export._put_verdict(out, Verdict.route("a", "bc").priority(7), None)
    _export._put_error(out, "boom")
    _export._put_verdict(out, Verdict.keep(), None)
    _export._put_verdict(out, Verdict.keep().payload(b"{}").headers([("h", "v")]).content_type("t")
                         .delay(0.005).ordering_key("k").attribute("x", "y"), None)
    assert bytes(out) == GOLDEN
    a, boom, keep, full = decode_verdicts(GOLDEN, 4)
    assert a == Ok(WitVerdict(routes=["a", "bc"], priority=7))
    assert boom == Err("boom") and keep == Ok(WitVerdict())
    assert full == Ok(WitVerdict(payload=b"{}", headers=[("h", "v")], content_type="t", delay_ms=5,
                                 ordering_key="k", attributes=[("x", "y")]))
    with pytest.raises(MalformedVerdicts, match="returned 4 verdicts for 3 events"):
        decode_verdicts(GOLDEN, 3)
    for cut in range(len(GOLDEN)):
        with pytest.raises(MalformedVerdicts):
            decode_verdicts(GOLDEN[:cut], 4)


def test_every_field_round_trips_through_the_batch_and_the_verdict_buffer():
    class Mirror(Plugin):
        def handle(self, e):
            v = (Verdict.route(e.topic, e.id).priority(e.received_at_ms % 10).payload(e.payload)
                 .content_type(e.content_type).header("x-seen", "1").ordering_key(e.header("x-k", "-")))
            for k, val in e.attributes():
                v = v.attribute(k + "-seen", val)
            return v

    events = [event({"n": i, "s": "é"}, topic=f"t{i}", id=f"id{i}", headers={"x-k": f"k{i}"},
                    attributes={"a": str(i)} if i % 2 else {}, received_at_ms=1000 + i)
              for i in range(5)]
    for e, r in zip(events, run(Mirror, {}, events)):
        v = r.value
        assert v.routes == [e.topic, e.id] and v.priority == e.received_at_ms % 10
        assert v.payload == e.payload and v.content_type == "application/json"
        assert v.headers == [("x-k", e.headers[0][1]), ("x-seen", "1")]
        assert v.ordering_key == e.headers[0][1]
        assert v.attributes == ([("a-seen", e.attributes[0][1])] if e.attributes else None)


def test_a_malformed_index_fails_only_its_event():
    class Reads(Plugin):
        def handle(self, e):
            return Verdict.route(e.topic).ordering_key(e.header("x-a", "-") + e.payload.decode())

    good = encode_batch([event(text="ok", topic="t", headers={"x-a": "1"})])
    rec = list(RECORD.unpack(good.events))
    past_end = rec.copy()
    past_end[8] = 10_000  # the payload's length
    no_fields = rec.copy()
    no_fields[9:11] = [0, 7]  # seven headers from entry 0: there is one
    odd_pair = rec.copy()
    odd_pair[9:11] = [1, 1]  # the entry after the good one, out of range itself
    fields = good.fields + FIELD.pack(0, 99_999, 0, 1)
    events = b"".join(RECORD.pack(*r) for r in (rec, past_end, no_fields, odd_pair)) + good.events[:20]
    handler = export(Reads)
    handler().init([])
    out = decode_verdicts(handler().handle(Batch(good.data, events, fields)), 5)
    assert out[0] == Ok(WitVerdict(routes=["t"], ordering_key="1ok"))
    assert out[1] == Err("ValueError: the host sent a malformed payload range")
    assert out[2] == Err("ValueError: the host sent a malformed headers range")
    assert out[3] == Ok(WitVerdict(routes=["t"], ordering_key="-ok")), "a bad pair is skipped"
    assert out[4] == Err("the host sent a cut-off record for event 4")


def test_handle_before_init_fails_every_event():
    out = export(Echo)().handle(encode_batch([event({}), event({})]))
    assert decode_verdicts(out, 2) == [Err("handle was called before init succeeded")] * 2
