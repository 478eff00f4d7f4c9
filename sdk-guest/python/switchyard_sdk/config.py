"""A plugin's ``config`` table from the gateway's TOML: every value a string."""


class ConfigError(ValueError):
    """A config the plugin cannot run with. Raised from ``init``, its message
    refuses the plugin: the gateway does not start, a reload is refused."""


class Config:
    """Read-only access to the plugin's config, with errors that name the key."""

    __slots__ = ("_values",)

    def __init__(self, values=None):
        if values is None:
            values = {}
        elif not isinstance(values, dict):
            values = dict(values)
        self._values = {str(k): str(v) for k, v in values.items()}

    def get(self, key, default=None):
        """The value of ``key``, or ``default`` when it is not set."""
        return self._values.get(key, default)

    def require(self, key):
        """The value of ``key``; a ConfigError naming it when it is not set."""
        if key not in self._values:
            raise ConfigError(f"config key {key!r} is required")
        return self._values[key]

    def get_int(self, key, default=None):
        """The value of ``key`` as an integer, or ``default`` when unset."""
        raw = self._values.get(key)
        if raw is None:
            return default
        try:
            return int(raw.strip())
        except ValueError:
            raise ConfigError(f"config key {key!r}: {raw!r} is not an integer") from None

    def get_bool(self, key, default=None):
        """``true``/``false`` (also ``1``/``0``, ``yes``/``no``), or ``default``."""
        raw = self._values.get(key)
        if raw is None:
            return default
        v = raw.strip().lower()
        if v in ("true", "1", "yes"):
            return True
        if v in ("false", "0", "no"):
            return False
        raise ConfigError(f"config key {key!r}: {raw!r} is not true or false")

    def list(self, key, sep=","):
        """The value of ``key`` split on ``sep``, items trimmed, empty ones
        dropped; ``[]`` when unset."""
        raw = self._values.get(key, "")
        return [item.strip() for item in raw.split(sep) if item.strip()]

    def deny_unknown(self, *known):
        """A ConfigError naming any key that is not in ``known``: a typo
        fails the start instead of being silently ignored."""
        if len(known) == 1 and isinstance(known[0], (list, tuple, set)):
            known = tuple(known[0])
        unknown = sorted(k for k in self._values if k not in known)
        if unknown:
            raise ConfigError(
                f"unknown config key {unknown[0]!r} (known keys: {', '.join(sorted(known)) or 'none'})"
            )

    def __contains__(self, key):
        return key in self._values

    def __iter__(self):
        return iter(sorted(self._values.items()))

    def __len__(self):
        return len(self._values)

    def __repr__(self):
        return f"Config({self._values!r})"
