"""Timing probe: the SDK loop with a handler that reads nothing and keeps."""
import time

from switchyard_sdk import Plugin, Verdict, export, log


class Keep(Plugin):
    def init(self, config):
        pass

    def handle(self, event):
        return Verdict.keep()


_Base = export(Keep)


class Handler(_Base):
    def handle(self, batch):
        t0 = time.perf_counter_ns()
        out = super().handle(batch)
        t1 = time.perf_counter_ns()
        log.info("timing", n=str(len(batch.events) // 56), inside_us=str((t1 - t0) // 1000))
        return out
