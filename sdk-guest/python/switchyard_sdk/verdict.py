"""What a plugin decides for one event: a builder whose unset fields keep
their value, so plugins compose in a chain."""

import datetime
import json


class Verdict:
    """A decision for one event. Start from :meth:`keep`, :meth:`route` or
    :meth:`drop`, then chain: ``Verdict.route("billing").priority(7)``.
    Each builder method returns a new verdict; the one it was called on is
    unchanged."""

    __slots__ = (
        "_routes",
        "_priority",
        "_payload",
        "_headers",
        "_header_sets",
        "_content_type",
        "_delay_ms",
        "_ordering_key",
        "_attributes",
    )

    def __init__(self):
        self._routes = None
        self._priority = None
        self._payload = None
        self._headers = None
        # `header(name, value)` calls, applied to the event's own headers
        # (or to `headers(...)`) when the verdict is handed back.
        self._header_sets = ()
        self._content_type = None
        self._delay_ms = None
        self._ordering_key = None
        self._attributes = None

    def _with(self, **changes):
        v = Verdict.__new__(Verdict)
        for name in Verdict.__slots__:
            setattr(v, name, changes.get(name, getattr(self, name)))
        return v

    @staticmethod
    def keep():
        """Changes nothing: the event goes on as it came."""
        return Verdict()

    @staticmethod
    def route(*destinations):
        """Sends the event to these destinations (replacing earlier routes)."""
        return Verdict().routes(*destinations)

    @staticmethod
    def drop():
        """Drops the event: no destination gets it."""
        return Verdict()._with(_routes=[])

    def routes(self, *destinations):
        """Sets the routes: names, or one list of names."""
        if len(destinations) == 1 and isinstance(destinations[0], (list, tuple)):
            destinations = destinations[0]
        for d in destinations:
            if not isinstance(d, str):
                raise TypeError(f"a destination is a name (str), not {d!r}")
        return self._with(_routes=list(destinations))

    def priority(self, priority):
        """Sets the priority, 0-9, 9 most urgent. Anything else is a ValueError."""
        if isinstance(priority, bool) or not isinstance(priority, int) or not 0 <= priority <= 9:
            raise ValueError(f"priority must be an integer 0-9, not {priority!r}")
        return self._with(_priority=priority)

    def payload(self, payload):
        """Replaces the payload: bytes, or str (sent as UTF-8)."""
        if isinstance(payload, str):
            payload = payload.encode("utf-8")
        if not isinstance(payload, (bytes, bytearray, memoryview)):
            raise TypeError(f"a payload is bytes or str, not {type(payload).__name__}")
        return self._with(_payload=bytes(payload))

    def json_payload(self, value):
        """Replaces the payload with ``value`` as JSON, content type
        ``application/json``."""
        text = json.dumps(value, separators=(",", ":"), ensure_ascii=False)
        return self.payload(text).content_type("application/json")

    def content_type(self, content_type):
        """Replaces the payload's media type."""
        return self._with(_content_type=str(content_type))

    def headers(self, headers):
        """Replaces the whole header list: ``(name, value)`` pairs or a dict."""
        pairs = headers.items() if isinstance(headers, dict) else headers
        return self._with(_headers=[(str(k).lower(), str(v)) for k, v in pairs], _header_sets=())

    def header(self, name, value):
        """Sets one header on a copy of the event's headers (or on the list
        given to :meth:`headers`): replaces every header of that name, or
        adds it. ``value=None`` removes it."""
        sets = self._header_sets + ((str(name).lower(), None if value is None else str(value)),)
        return self._with(_header_sets=sets)

    def delay(self, delay):
        """Holds the first delivery back: seconds (int or float) or a timedelta."""
        if isinstance(delay, datetime.timedelta):
            seconds = delay.total_seconds()
        elif isinstance(delay, (int, float)) and not isinstance(delay, bool):
            seconds = float(delay)
        else:
            raise TypeError(f"a delay is seconds or a timedelta, not {delay!r}")
        if seconds < 0:
            raise ValueError(f"a delay cannot be negative ({seconds}s)")
        return self._with(_delay_ms=int(round(seconds * 1000)))

    def ordering_key(self, key):
        """Deliveries with the same key stay in order where a destination asks for FIFO."""
        return self._with(_ordering_key=str(key))

    def attribute(self, key, value):
        """Sets a note for the plugins after this one."""
        attrs = list(self._attributes or [])
        attrs = [(k, v) for k, v in attrs if k != key]
        attrs.append((str(key), str(value)))
        return self._with(_attributes=attrs)

    # What the verdict says, for tests.

    def get_routes(self):
        return None if self._routes is None else list(self._routes)

    def get_priority(self):
        return self._priority

    def get_payload(self):
        return self._payload

    def get_json_payload(self):
        return None if self._payload is None else json.loads(self._payload)

    def get_content_type(self):
        return self._content_type

    def get_headers(self, event=None):
        """The header list the verdict sets. With ``header(...)`` calls and
        no ``headers(...)``, they apply to ``event``'s headers."""
        if not self._header_sets:
            return None if self._headers is None else list(self._headers)
        base = self._headers
        if base is None:
            base = event.headers() if event is not None else []
        out = list(base)
        for name, value in self._header_sets:
            out = [(k, v) for k, v in out if k != name]
            if value is not None:
                out.append((name, value))
        return out

    def get_delay_ms(self):
        return self._delay_ms

    def get_ordering_key(self):
        return self._ordering_key

    def get_attributes(self):
        return None if self._attributes is None else list(self._attributes)

    def as_dict(self, event=None):
        """The fields the verdict sets, by their contract names."""
        out = {
            "routes": self.get_routes(),
            "priority": self._priority,
            "payload": self._payload,
            "headers": self.get_headers(event),
            "content_type": self._content_type,
            "delay_ms": self._delay_ms,
            "ordering_key": self._ordering_key,
            "attributes": self.get_attributes(),
        }
        return {k: v for k, v in out.items() if v is not None}

    def __eq__(self, other):
        return isinstance(other, Verdict) and all(
            getattr(self, n) == getattr(other, n) for n in Verdict.__slots__
        )

    def __repr__(self):
        return f"Verdict({self.as_dict()!r})"
