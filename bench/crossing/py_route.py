"""Timing probe around route-by-field (SDK), issue 18 item 6: logs, per
batch, the time inside the contract's `handle` and inside the plugin's own
per-event `handle`; the host's `plugin test` gives the whole call."""
import time

from switchyard_sdk import export, log
from route_by_field import RouteByField

spent = [0]


class Timed(RouteByField):
    def handle(self, event):
        t = time.perf_counter_ns()
        try:
            return super().handle(event)
        finally:
            spent[0] += time.perf_counter_ns() - t


_Base = export(Timed)


class Handler(_Base):
    def handle(self, batch):
        spent[0] = 0
        t0 = time.perf_counter_ns()
        out = super().handle(batch)
        t1 = time.perf_counter_ns()
        log.info("timing", n=str(len(batch.events) // 56), inside_us=str((t1 - t0) // 1000), handler_us=str(spent[0] // 1000))
        return out
