"""Reusable simpy timeouts for the replay's hot path: the same event objects are scheduled again
(``Environment.schedule``, what a ``simpy.Timeout`` does when it is made) once they have fired,
instead of a new ``Timeout`` per send, NIC wake-up or compute op. Times in seconds."""

from __future__ import annotations

from collections.abc import Callable

import simpy
from simpy.events import NORMAL


class _Timer(simpy.Event):
    """One pooled timeout: when it fires it goes back to its pool, then calls ``callback(value)``."""

    def __init__(self, pool: TimerPool):
        super().__init__(pool.env)
        self._ok = True
        self.pool = pool
        self.callback: Callable = None
        self.fire = [self._fire]  # its callbacks, the same list each time it is scheduled

    def _fire(self, _event) -> None:
        callback, value = self.callback, self._value
        self.pool.free.append(self)
        callback(value)


class TimerPool:
    """Timeouts calling ``callback(value)`` after ``delay`` s, from a free list of fired ones."""

    def __init__(self, env: simpy.Environment):
        self.env = env
        self.free: list[_Timer] = []

    def after(self, delay: float, callback: Callable, value=None) -> None:
        """Call ``callback(value)`` ``delay`` s from now (``delay`` >= 0), as a simpy event of
        normal priority (the order of a ``Timeout`` made now)."""
        if delay < 0:
            raise ValueError(f"Negative delay {delay}")
        free = self.free
        timer = free.pop() if free else _Timer(self)
        timer.callback, timer._value, timer.callbacks = callback, value, timer.fire
        self.env.schedule(timer, NORMAL, delay)
