"""The nodes' NICs as shared resources: fluid processor sharing of each NIC's bandwidth (per
direction) among the off-node transfers active on it. Times in seconds, bandwidths in Gbit/s.

The sharing rule is ``planner.topology.offnode_bandwidth_per_device_gbps`` (an even split among the
devices using the NIC) applied at each instant: a flow of a device gets NIC bandwidth / devices
using the NIC now, on each NIC it crosses, and progresses at (the smallest of those) / the share the
Pricer assumed (its priced duration already holds that share, latency and efficiency).

Sharing on one NIC does not depend on any other NIC, so a change (a flow starting or finishing)
only re-rates the flows on the NICs of the flow that changed; each flow keeps its progress
since its last re-rating, and one heap of projected finish times gives the next completion.

A route is the NICs of one transfer. While no other route uses any of its NICs (a pipeline send
between two nodes, before the gradient reduction loads the same NICs) the route is exclusive: its
NICs change together, so the route keeps their common clock, busy time and flow count and each
NIC's users are its devices times that count, with no per-NIC bookkeeping; the first other route
on one of its NICs hands the state to the NICs (the same numbers) and they are kept one by one.
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

    __slots__ = ("born", "remaining", "last", "rate", "route", "nics", "share", "done", "version", "active", "arg")

    def __init__(self, born: int, remaining: float, last: float, route: _Route, share: float, done, arg=None):
        self.born = born  # start order: simultaneous completions fire in this order
        self.remaining = remaining
        self.last = last
        self.rate = 0.0
        self.route = route
        self.nics = route.nics
        self.share = share
        self.done = done  # simpy.Event to succeed, or a callable to call (with ``arg`` if given)
        self.arg = arg
        self.version = 0
        self.active = True


class _Nic:
    """One NIC direction: its bandwidth (None when the plan does not list it), devices using it
    now, its flows (insertion-ordered), and since when ``users`` has held; while ``owner`` (an
    exclusive route) is set, that route keeps them."""

    __slots__ = ("key", "gbps", "users", "flows", "since", "busy", "device_seconds", "owner", "n")

    def __init__(self, key: NicKey, gbps: float | None, now: float):
        self.key = key
        self.gbps = gbps
        self.users = 0
        self.flows: dict[_Flow, None] = {}
        self.since = now
        self.busy = 0.0  # seconds with at least one user
        self.device_seconds = 0.0  # integral of users over time
        self.owner: _Route | bool | None = None  # the exclusive route using it; None: unused; False: shared
        self.n = 0  # devices of each of the owner's flows on it


class _Route:
    """The NICs of a transfer ((NIC, devices), ...). While ``exclusive`` it keeps their common
    state: active flows, since when ``count`` (their number) has held, seconds with a flow
    (``busy``) and the integral of ``count`` over time (``count_seconds``)."""

    __slots__ = ("nics", "exclusive", "flows", "count", "since", "busy", "count_seconds", "solo_rate")

    def __init__(self, nics: tuple[tuple[_Nic, int], ...], exclusive: bool, now: float):
        self.nics = nics
        self.exclusive = exclusive
        self.flows: dict[_Flow, None] = {}
        self.count = 0
        self.since = now
        self.busy = 0.0
        self.count_seconds = 0.0
        self.solo_rate: dict[float, float] = {}  # share -> rate of a flow alone on the route


class NicFabric:
    """The NICs of the simulated nodes. ``flow`` starts a transfer; ``busy`` (s the NIC had at
    least one user) and ``device_seconds`` (integral of its users over time) are kept per NIC key
    for the utilisation table."""

    def __init__(self, env: simpy.Environment, nic_gbps: dict[NicKey, float]):
        self.env = env
        self.gbps = nic_gbps
        self._nics: dict[NicKey, _Nic] = {}
        self._resolved: dict[int, tuple] = {}  # id(nics tuple) -> (the tuple, its route)
        self._routes: dict[tuple, _Route] = {}  # nics tuple (by value) -> route
        self._heap: list[tuple[float, int, int, _Flow]] = []  # (finish s, seq, version, flow)
        self._seq = itertools.count()
        self._wake_at = math.inf
        self._wake = 0  # token of the live wake-up (earlier ones are superseded)
        self._timers = TimerPool(env)
        self._wake_cb = self._on_wake

    def _route(self, nics) -> _Route:
        """The route of ``nics`` (one per distinct tuple); a new route over a NIC another route
        uses makes both of them (and all their NICs) keep per-NIC state from now on."""
        hit = self._resolved.get(id(nics))
        if hit is not None and hit[0] is nics:
            return hit[1]
        route = self._routes.get(nics)
        if route is None:
            now = self.env.now
            out = []
            for key, n in nics:
                nic = self._nics.get(key)
                if nic is None:
                    nic = self._nics[key] = _Nic(key, self.gbps.get(key), now)
                out.append((nic, n))
            exclusive = all(nic.owner is None for nic, _ in out) and len({id(nic) for nic, _ in out}) == len(out)
            route = self._routes[nics] = _Route(tuple(out), exclusive, now)
            for nic, n in out:
                if nic.owner:
                    self._hand_over(nic.owner)
                nic.owner, nic.n = (route, n) if exclusive else (False, 0)
        self._resolved[id(nics)] = (nics, route)
        return route

    @staticmethod
    def _hand_over(route: _Route) -> None:
        """An exclusive route's state to its NICs (each then kept on its own)."""
        route.exclusive = False
        for nic, n in route.nics:
            nic.owner = False
            nic.users = n * route.count
            nic.flows = dict(route.flows)
            nic.since = route.since
            nic.busy = route.busy
            nic.device_seconds = n * route.count_seconds

    @property
    def busy(self) -> dict[NicKey, float]:
        """Seconds each NIC direction had at least one user (every planned key, then any other)."""
        out = dict.fromkeys(self.gbps, 0.0)
        out.update((k, nic.owner.busy if nic.owner else nic.busy) for k, nic in self._nics.items())
        return out

    @property
    def device_seconds(self) -> dict[NicKey, float]:
        """Integral of each NIC direction's users over time, device-seconds."""
        out = dict.fromkeys(self.gbps, 0.0)
        out.update((k, nic.n * nic.owner.count_seconds if nic.owner else nic.device_seconds)
                   for k, nic in self._nics.items())
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
        route = self._route(nics)
        f = _Flow(next(self._seq), offnode_s, now, route, share, done, arg)
        if route.exclusive:  # book the route (all its NICs) since its last change
            count = route.count
            if count:
                dt = now - route.since
                if dt > 0:
                    route.busy += dt
                    route.count_seconds += count * dt
            route.since = now
            route.count = count + 1
            route.flows[f] = None
            if count:
                self._rerate(route.flows, now)
                self._arm(now)
                return None if on_done is not None else done
            rate = route.solo_rate.get(share)
            if rate is None:  # alone: each NIC's users are this flow's devices on it
                rate = route.solo_rate[share] = min(
                    (share if nic.gbps is None else nic.gbps) / n for nic, n in route.nics) / share
            self._start_alone(f, rate, now)
            return None if on_done is not None else done
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
            self._arm(now)
        else:
            self._start_alone(f, min((share if nic.gbps is None else nic.gbps) / nic.users
                                     for nic, _ in f.nics) / share, now)
        return None if on_done is not None else done

    def _start_alone(self, f: _Flow, rate: float, now: float) -> None:
        """A new flow alone on its NICs: its rate, its finish on the heap, the wake-up if earliest
        (``_rerate`` and ``_arm`` of that one flow)."""
        f.rate, f.version = rate, 1
        t = now + f.remaining / rate
        heapq.heappush(self._heap, (t, next(self._seq), 1, f))
        if t < self._wake_at:  # the new entry is live, and the earliest if before the wake-up
            self._wake_at = t
            self._wake += 1
            self._timers.after(t - now, self._wake_cb, self._wake)

    def _rerate(self, flows, now: float) -> None:
        """New rates of ``flows`` after their NICs' users changed; re-project their finish times."""
        heap, seq = self._heap, self._seq
        for f in flows:
            if not f.active:
                continue
            share = f.share
            if f.route.exclusive:
                count = f.route.count
                rate = min((share if nic.gbps is None else nic.gbps) / (n * count) for nic, n in f.nics) / share
            else:
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
                    self._timers.after(max(t - now, 0.0), self._wake_cb, self._wake)
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
            route = f.route
            if route.exclusive:  # book as in ``flow``
                dt = now - route.since
                if dt > 0 and route.count:
                    route.busy += dt
                    route.count_seconds += route.count * dt
                route.since = now
                route.count -= 1
                flows = route.flows
                flows.pop(f, None)
                if flows:
                    affected.update(flows)
                continue
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
