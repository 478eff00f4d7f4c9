"""Running a plugin natively, as the gateway would, without Wasm.

:func:`run` lays events out as the contract's batch (the same layout as the
gateway's ``encode_batch``), runs the exported handler's ``init`` and
``handle``, and gives back one :class:`Ok` or :class:`Err` per event, whose
``value`` is the contract's verdict record or the error text::

    from switchyard_sdk.testing import event, run
    [result] = run(ByType, {}, [event({"type": "refund"})])
    assert result.value.routes == ["refunds"]
"""

import json as _json
import time
from dataclasses import dataclass, field
from typing import List, Optional, Tuple


@dataclass
class Span:
    offset: int
    len: int


@dataclass
class Field:
    name: Span
    value: Span


@dataclass
class WitEvent:
    id: Span
    topic: Span
    received_at_ms: int
    headers: Span
    content_type: Span
    payload: Span
    attributes: Span


@dataclass
class Batch:
    data: bytes
    fields: List[Field]
    events: List[WitEvent]


@dataclass
class WitVerdict:
    """The contract's verdict record, as componentize-py generates it."""

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
    to back in ``data``, headers and attributes in ``fields``."""
    data = bytearray()
    fields = []
    out = []

    def put(b):
        s = Span(len(data), len(b))
        data.extend(b)
        return s

    def put_fields(pairs):
        s = Span(len(fields), len(pairs))
        for k, v in pairs:
            fields.append(Field(put(k.encode("utf-8")), put(v.encode("utf-8"))))
        return s

    for e in events:
        out.append(
            WitEvent(
                id=put(e.id.encode("utf-8")),
                topic=put(e.topic.encode("utf-8")),
                received_at_ms=e.received_at_ms,
                headers=put_fields(e.headers),
                content_type=put(e.content_type.encode("utf-8")),
                payload=put(e.payload),
                attributes=put_fields(e.attributes),
            )
        )
    return Batch(data=bytes(data), fields=fields, events=out)


def run(plugin_class, config, events):
    """Exports ``plugin_class``, calls ``init(config)`` (a dict), then
    ``handle`` on one batch of ``events``: one Ok(verdict record) or
    Err(message) per event. A refused config raises :class:`Err`."""
    from ._export import export

    handler = export(plugin_class)
    # A fresh Handler per call, as componentize-py makes them: state must
    # survive from init to handle without living on the Handler.
    handler().init(sorted((str(k), str(v)) for k, v in (config or {}).items()))
    return handler().handle(encode_batch(events))
