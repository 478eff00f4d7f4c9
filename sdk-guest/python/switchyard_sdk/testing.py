"""Running a plugin natively, as the gateway would, without Wasm.

:func:`run` lays events out as the contract's batch (the same layout as the
gateway's ``encode_batch``), runs the exported handler's ``init`` and
``handle``, reads the verdict buffer back (:func:`decode_verdicts`, as
strict as the gateway), and gives one :class:`Ok` or :class:`Err` per event,
whose ``value`` is a verdict record or the error text::

    from switchyard_sdk.testing import event, run
    [result] = run(ByType, {}, [event({"type": "refund"})])
    assert result.value.routes == ["refunds"]
"""

import json as _json
import struct
import time
from dataclasses import dataclass, field
from typing import List, Optional, Tuple

from .event import FIELD, RECORD


@dataclass
class Batch:
    """The contract's batch: three byte strings (``schemas/wit/plugin.wit``)."""

    data: bytes
    events: bytes
    fields: bytes


@dataclass
class WitVerdict:
    """One decoded verdict: the fields a plugin set, None for the others."""

    routes: Optional[List[str]] = None
    priority: Optional[int] = None
    payload: Optional[bytes] = None
    headers: Optional[List[Tuple[str, str]]] = None
    content_type: Optional[str] = None
    delay_ms: Optional[int] = None
    ordering_key: Optional[str] = None
    attributes: Optional[List[Tuple[str, str]]] = None


@dataclass
class Ok:
    value: object


@dataclass(frozen=True)
class Err(Exception):
    value: object


@dataclass
class SampleEvent:
    """An event to put in a batch: what ``event()`` makes."""

    payload: bytes = b""
    topic: str = "test"
    id: str = "01J00000000000000000000000"
    content_type: str = "application/json"
    headers: List[Tuple[str, str]] = field(default_factory=list)
    attributes: List[Tuple[str, str]] = field(default_factory=list)
    received_at_ms: int = 0


def event(body=None, *, text=None, raw=None, topic="test", id=None, content_type=None,
          headers=None, attributes=None, received_at_ms=None):
    """An event with a JSON ``body`` (any value, serialised), or ``text``,
    or ``raw`` bytes; headers and attributes as a dict or pairs."""
    if raw is not None:
        payload, ct = bytes(raw), "application/octet-stream"
    elif text is not None:
        payload, ct = text.encode("utf-8"), "text/plain"
    elif body is not None:
        payload, ct = _json.dumps(body).encode("utf-8"), "application/json"
    else:
        payload, ct = b"", "application/octet-stream"

    def pairs(p, lower):
        items = p.items() if isinstance(p, dict) else (p or [])
        return [((str(k).lower() if lower else str(k)), str(v)) for k, v in items]

    return SampleEvent(
        payload=payload,
        topic=topic,
        id=id or "01J00000000000000000000000",
        content_type=content_type or ct,
        headers=pairs(headers, True),
        attributes=pairs(attributes, False),
        received_at_ms=int(time.time() * 1000) if received_at_ms is None else received_at_ms,
    )


def encode_batch(events):
    """Lays ``events`` out as the contract's batch: texts and payloads back
    to back in ``data``, a 56-byte record per event in ``events``, a
    16-byte entry per header and attribute in ``fields``."""
    data = bytearray()
    fields = bytearray()
    index = bytearray()

    def put(b):
        at = len(data)
        data.extend(b)
        return at, len(b)

    def put_fields(pairs):
        first = len(fields) // FIELD.size
        for k, v in pairs:
            fields.extend(FIELD.pack(*put(k.encode("utf-8")), *put(v.encode("utf-8"))))
        return first, len(pairs)

    for e in events:
        id_ = put(e.id.encode("utf-8"))
        topic = put(e.topic.encode("utf-8"))
        content_type = put(e.content_type.encode("utf-8"))
        payload = put(e.payload)
        headers = put_fields(e.headers)
        attributes = put_fields(e.attributes)
        index.extend(RECORD.pack(e.received_at_ms, *id_, *topic, *content_type, *payload,
                                 *headers, *attributes))
    return Batch(data=bytes(data), events=bytes(index), fields=bytes(fields))


class MalformedVerdicts(ValueError):
    """A verdict buffer the gateway would refuse as a whole."""


def decode_verdicts(buf, n):
    """Reads a verdict buffer for ``n`` events as the gateway does: one
    Ok(WitVerdict) or Err(message) per event. A buffer the gateway could not
    frame raises :class:`MalformedVerdicts`; text that is not UTF-8 or a
    priority above 9 is an Err for that event, as the gateway makes it."""
    at = 0

    def take(k):
        nonlocal at
        if at + k > len(buf):
            raise MalformedVerdicts(f"at byte {at}: {k} bytes wanted, {len(buf) - at} left")
        at += k
        return buf[at - k : at]

    def u32():
        return struct.unpack("<I", take(4))[0]

    def text():
        return bytes(take(u32())).decode("utf-8")

    def pairs():
        return [(text(), text()) for _ in range(u32())]

    count = u32()
    if count != n:
        raise MalformedVerdicts(f"returned {count} verdicts for {n} events")
    out = []
    for _ in range(n):
        tag = take(1)[0]
        if tag == 1:
            out.append(Err(bytes(take(u32())).decode("utf-8", "replace")))
            continue
        if tag != 0:
            raise MalformedVerdicts(f"at byte {at - 1}: tag {tag}, not 0 (ok) or 1 (err)")
        flags = take(1)[0]
        v = WitVerdict()
        try:
            if flags & 1:
                v.routes = [text() for _ in range(u32())]
            if flags & 2:
                v.priority = take(1)[0]
            if flags & 4:
                v.payload = bytes(take(u32()))
            if flags & 8:
                v.headers = pairs()
            if flags & 16:
                v.content_type = text()
            if flags & 32:
                v.delay_ms = struct.unpack("<Q", take(8))[0]
            if flags & 64:
                v.ordering_key = text()
            if flags & 128:
                v.attributes = pairs()
        except UnicodeDecodeError:
            # The rest of this verdict cannot be framed from here in this
            # simple reader; the SDK never writes such text anyway.
            raise MalformedVerdicts(f"at byte {at}: text that is not UTF-8") from None
        if v.priority is not None and v.priority > 9:
            out.append(Err(f"set priority {v.priority}; priorities are 0-9"))
        else:
            out.append(Ok(v))
    if at != len(buf):
        raise MalformedVerdicts(f"{len(buf) - at} bytes left after the last result")
    return out


def run(plugin_class, config, events):
    """Exports ``plugin_class``, calls ``init(config)`` (a dict), then
    ``handle`` on one batch of ``events``: one Ok(verdict record) or
    Err(message) per event. A refused config raises :class:`Err`."""
    from ._export import export

    handler = export(plugin_class)
    # A fresh Handler per call, as componentize-py makes them: state must
    # survive from init to handle without living on the Handler.
    handler().init(sorted((str(k), str(v)) for k, v in (config or {}).items()))
    return decode_verdicts(handler().handle(encode_batch(events)), len(events))
