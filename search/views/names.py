"""Short names for tables and figures: which machine and setting a step clock was measured on."""

from __future__ import annotations

from lenet.clock import StepClock


def clock_name(clock: StepClock | None) -> str:
    """Which machine and setting a step clock was measured on, in a few words."""
    if clock is None:
        return "the wall clock"
    name = clock.hardware.get("name") or clock.device
    threads = f", {clock.threads} thread(s)" if clock.threads else ""
    side = f" x {clock.processes} processes side by side" if clock.processes > 1 else ""
    return f"{clock.device} ({name}){threads}{side}"
