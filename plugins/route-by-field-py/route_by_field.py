"""`route-by-field`, in Python: routes each event by the value at a JSON pointer.

The same rule and config as the Rust `route-by-field` plugin:
- `pointer` (required): where to look, e.g. `/type`.
- `routes` (required): `value=dest[|dest...]` pairs separated by commas.
- `default` (optional): destinations (`|`-separated) for any other value or
  a missing field; without it such events keep their current routes.
- `priorities` (optional): `value=0..9` pairs, e.g. `refund=8`.

Build: python -m switchyard_sdk.build plugins/route-by-field-py/route_by_field.py -o route_by_field_py.wasm
"""

from switchyard_sdk import ConfigError, Plugin, Verdict, export, log


def destinations(raw):
    return [d.strip() for d in raw.split("|") if d.strip()]


def pairs(raw, key):
    out = []
    for pair in (p.strip() for p in raw.split(",")):
        if not pair:
            continue
        if "=" not in pair:
            raise ConfigError(f"config key {key!r}: {pair!r} is not value=...")
        k, v = pair.split("=", 1)
        out.append((k.strip(), v.strip()))
    return out


class RouteByField(Plugin):
    def init(self, config):
        config.deny_unknown("pointer", "routes", "default", "priorities")
        self.pointer = config.require("pointer")
        if self.pointer and not self.pointer.startswith("/"):
            raise ConfigError(f"config key 'pointer': {self.pointer!r} must start with '/'")
        self.routes = {k: destinations(v) for k, v in pairs(config.require("routes"), "routes")}
        self.priorities = {}
        for k, v in pairs(config.get("priorities", ""), "priorities"):
            if not v.isdigit() or int(v) > 9:
                raise ConfigError(f"config key 'priorities': {v!r} is not 0-9")
            self.priorities[k] = int(v)
        default = config.get("default")
        self.default = destinations(default) if default is not None else None
        log.info("Routing by field.", pointer=self.pointer, values=len(self.routes))

    def handle(self, event):
        value = event.json_at(self.pointer)
        if isinstance(value, bool):
            value = "true" if value else "false"
        elif isinstance(value, (int, float)):
            value = str(value)
        elif not isinstance(value, str):
            value = None
        dest = self.routes.get(value, self.default)
        verdict = Verdict.route(dest) if dest is not None else Verdict.keep()
        if value in self.priorities:
            verdict = verdict.priority(self.priorities[value])
        return verdict


Handler = export(RouteByField)
