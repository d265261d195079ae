"""The nodes' NICs as shared resources: fluid processor sharing of each NIC's bandwidth (per
direction) among the off-node transfers active on it. Times in seconds, bandwidths in Gbit/s.

The sharing rule is ``planner.topology.offnode_bandwidth_per_device_gbps`` (an even split among the
devices using the NIC) applied at each instant: a flow of a device gets NIC bandwidth / devices
using the NIC now, on each NIC it crosses, and progresses at (the smallest of those) / the share the
Pricer assumed (its priced duration already holds that share, latency and efficiency).

Sharing on one NIC does not depend on any other NIC, so a change (a flow starting or finishing)
only re-rates the flows on the NICs of the flow that changed; each flow keeps its progress
since its last re-rating, and one heap of projected finish times gives the next completion.
"""

from __future__ import annotations

import heapq
import itertools
import math

import simpy

from .entities import NicKey
from .timers import TimerPool

_DONE_SLACK_S = 1e-6  # finish times this close to now are tested with the completion rule below


class _Flow:
    """An active transfer: priced off-node seconds left as of ``last`` (s), progressing at ``rate``
    (actual / priced bandwidth share) over ``nics`` ((NIC, devices of this transfer on it))."""

    __slots__ = ("born", "remaining", "last", "rate", "nics", "share", "done", "version", "active", "arg")

    def __init__(self, born: int, remaining: float, last: float, nics, share: float, done, arg=None):
        self.born = born  # start order: simultaneous completions fire in this order
        self.remaining = remaining
        self.last = last
        self.rate = 0.0
        self.nics = nics
        self.share = share
        self.done = done  # simpy.Event to succeed, or a callable to call (with ``arg`` if given)
        self.arg = arg
        self.version = 0
        self.active = True


class _Nic:
    """One NIC direction: its bandwidth (None when the plan does not list it), devices using it
    now, its flows (insertion-ordered), and since when ``users`` has held."""

    __slots__ = ("key", "gbps", "users", "flows", "since", "busy", "device_seconds")

    def __init__(self, key: NicKey, gbps: float | None, now: float):
        self.key = key
        self.gbps = gbps
        self.users = 0
        self.flows: dict[_Flow, None] = {}
        self.since = now
        self.busy = 0.0  # seconds with at least one user
        self.device_seconds = 0.0  # integral of users over time


class NicFabric:
    """The NICs of the simulated nodes. ``flow`` starts a transfer; ``busy`` (s the NIC had at
    least one user) and ``device_seconds`` (integral of its users over time) are kept per NIC key
    for the utilisation table."""

    def __init__(self, env: simpy.Environment, nic_gbps: dict[NicKey, float]):
        self.env = env
        self.gbps = nic_gbps
        self._nics: dict[NicKey, _Nic] = {}
        self._resolved: dict[int, tuple] = {}  # id(nics tuple) -> (the tuple, ((_Nic, n), ...))
        self._heap: list[tuple[float, int, int, _Flow]] = []  # (finish s, seq, version, flow)
        self._seq = itertools.count()
        self._wake_at = math.inf
        self._wake = 0  # token of the live wake-up (earlier ones are superseded)
        self._timers = TimerPool(env)

    def _resolve(self, nics) -> tuple[tuple[_Nic, int], ...]:
        hit = self._resolved.get(id(nics))
        if hit is not None and hit[0] is nics:
            return hit[1]
        out = []
        for key, n in nics:
            nic = self._nics.get(key)
            if nic is None:
                nic = self._nics[key] = _Nic(key, self.gbps.get(key), self.env.now)
            out.append((nic, n))
        self._resolved[id(nics)] = (nics, tuple(out))
        return tuple(out)

    @property
    def busy(self) -> dict[NicKey, float]:
        """Seconds each NIC direction had at least one user (every planned key, then any other)."""
        out = dict.fromkeys(self.gbps, 0.0)
        out.update((k, nic.busy) for k, nic in self._nics.items())
        return out

    @property
    def device_seconds(self) -> dict[NicKey, float]:
        """Integral of each NIC direction's users over time, device-seconds."""
        out = dict.fromkeys(self.gbps, 0.0)
        out.update((k, nic.device_seconds) for k, nic in self._nics.items())
        return out

    def flow(self, offnode_s: float, nics, share: float, on_done=None, arg=None) -> simpy.Event | None:
        """Start a flow of ``offnode_s`` priced seconds over ``nics`` ((key, devices), ...) at a
        priced per-device share of ``share`` Gbit/s. Returns the event of its completion, or, given
        ``on_done``, returns None and calls ``on_done()`` (``on_done(arg)`` given ``arg``) when it
        completes. Any collective on an axis group books the fabric this way."""
        env = self.env
        if offnode_s <= 0 or not nics:
            if on_done is None:
                return simpy.Event(env).succeed()
            on_done() if arg is None else on_done(arg)
            return None
        done = simpy.Event(env) if on_done is None else on_done
        now = env.now
        f = _Flow(next(self._seq), offnode_s, now, self._resolve(nics), share, done, arg)
        shared = False  # another flow on one of its NICs: re-rate them all; else only the new one
        for nic, n in f.nics:
            if nic.users:  # book the NIC's busy and device-seconds since its last change
                dt = now - nic.since
                if dt > 0:
                    nic.busy += dt
                    nic.device_seconds += nic.users * dt
                shared = True
            nic.since = now
            nic.users += n
            nic.flows[f] = None
        if shared:
            affected: dict[_Flow, None] = {}
            for nic, _ in f.nics:
                affected.update(nic.flows)
            self._rerate(affected, now)
        else:  # alone on its NICs: only its own rate (``_rerate`` of the new flow, inlined)
            rate = min((share if nic.gbps is None else nic.gbps) / nic.users for nic, _ in f.nics) / share
            f.rate, f.version = rate, 1
            t = now + offnode_s / rate
            heapq.heappush(self._heap, (t, next(self._seq), 1, f))
            if t < self._wake_at:  # ``_arm``: the new entry is live, and the earliest if before the wake
                self._wake_at = t
                self._wake += 1
                self._timers.after(t - now, self._on_wake, self._wake)
            return None if on_done is not None else done
        self._arm(now)
        return None if on_done is not None else done

    def _rerate(self, flows, now: float) -> None:
        """New rates of ``flows`` after their NICs' users changed; re-project their finish times."""
        heap, seq = self._heap, self._seq
        for f in flows:
            if not f.active:
                continue
            share = f.share
            rate = min((share if nic.gbps is None else nic.gbps) / nic.users for nic, _ in f.nics) / share
            if rate == f.rate:
                continue
            if f.rate:
                f.remaining -= f.rate * (now - f.last)
            f.last = now
            f.rate = rate
            f.version += 1
            heapq.heappush(heap, (now + max(f.remaining, 0.0) / rate, next(seq), f.version, f))

    def _arm(self, now: float) -> None:
        """Make sure a wake-up is scheduled at the earliest projected finish (drops stale entries)."""
        heap = self._heap
        while heap:
            t, _, version, f = heap[0]
            if f.active and version == f.version:
                if t < self._wake_at:
                    self._wake_at = t
                    self._wake += 1
                    self._timers.after(max(t - now, 0.0), self._on_wake, self._wake)
                return
            heapq.heappop(heap)

    def _on_wake(self, token: int) -> None:
        if token != self._wake:
            return  # superseded by an earlier wake-up
        self._wake_at = math.inf
        now = self.env.now
        heap, finished, keep = self._heap, [], None
        limit = now + _DONE_SLACK_S
        while heap and heap[0][0] <= limit:
            entry = heapq.heappop(heap)
            f = entry[3]
            if not f.active or entry[2] != f.version:
                continue
            if f.remaining - f.rate * (now - f.last) <= 1e-12 + 1e-9 * f.rate:
                f.active = False
                finished.append(f)
            elif keep is None:
                keep = [entry]
            else:
                keep.append(entry)
        if keep:
            for entry in keep:
                heapq.heappush(heap, entry)
        affected: dict[_Flow, None] = {}
        for f in finished:
            for nic, n in f.nics:
                dt = now - nic.since  # book as in ``flow``
                if dt > 0 and nic.users:
                    nic.busy += dt
                    nic.device_seconds += nic.users * dt
                nic.since = now
                nic.users -= n
                flows = nic.flows
                flows.pop(f, None)
                if flows:
                    affected.update(flows)
        if len(finished) > 1:
            finished.sort(key=lambda f: f.born)
        if affected:
            self._rerate(affected, now)
        self._arm(now)
        for f in finished:
            done = f.done
            if isinstance(done, simpy.Event):
                done.succeed()
            elif f.arg is None:
                done()
            else:
                done(f.arg)
