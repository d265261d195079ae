"""The compute stream of one plain stage driven by simpy callbacks instead of a generator process.

A plain stage (no jitter, no trace, no ZeRO-3 gathers, exposed offload copies, context-parallel
exchanges or expert all-to-all flows: ``Engine.plain_stage``) runs each op as one simpy event timed at
its priced compute + TP seconds, whose callback books the op and starts the next one. An
op whose input has not arrived registers its start in ``Engine.waiting``, and the arrival calls it
at the arrival's instant. Pipeline sends are a timeout carrying their arrival key, one NIC flow
calling back with it, or a timeout of the intra-node part whose callback starts the NIC flow: no
process, no generator and no extra event per op. This is the same replay as ``Engine._op`` (same
durations, same instants, same bookings), at about two simpy events per op instead of five.
Times in seconds, memory in bytes.
"""

from __future__ import annotations

import simpy
from simpy.events import NORMAL

from .schedules import stage_order


class StageStream(simpy.Event):
    """Stage ``i`` of ``eng`` (an ``Engine``): ``start()`` runs its op order; ``done`` succeeds
    when its last op (and, overlap off, its last blocking send) is over.

    The stream is itself the simpy event of its op's compute: a stage computes one op at a time,
    so that one event is scheduled again for each op (``Environment.schedule``, what a ``Timeout``
    does when it is made), with the same callback list."""

    def __init__(self, eng, i: int):
        super().__init__(eng.env)
        self._ok, self._value = True, None  # a compute event succeeds, with no value
        self.eng, self.i = eng, i
        self.after = eng.timers.after
        self.env = env = eng.env
        self.order = stage_order(eng.schedule, i, eng.p, eng.m, eng.v)
        self.n_ops = len(self.order)
        self.k = 0  # index of the op in progress (or next to start)
        self.p, self.m, self.last_vs = eng.p, eng.m, eng.p * eng.v - 1
        self.log = eng.logs[i]
        self.done = simpy.Event(env)
        plan = eng.plan.stages[i]
        self.act = plan.activation_bytes_per_microbatch / eng.v
        self.record = eng.record_memory
        self.frees = "W" if eng.split else "B"
        # per chunk: {kind: phase} as the engine runs them (backward = input-grad + weight-grad unless split)
        self.phases = [{"F": ch.fwd, "B": b, "W": ch.wgrad} for ch, b in zip(plan.chunks, eng.bwd[i])]
        self.windows = eng.windows[i]
        self.blocks = not eng.overlap and eng.p > 1  # each F / B holds a blocking send slot
        sends = eng.plan.sends
        # per direction: what starts the async send of a key (overlap on)
        self.send = {kind: self._sender(sends[(i, to)], to) for kind, to in (("F", (i + 1) % eng.p),
                                                                            ("B", (i - 1) % eng.p))
                     if (i, to) in sends}
        # the op in progress: its phase, and (overlap off) its blocking send
        self.ph = None
        self.to_key = None
        self.tr = None
        self.s0 = 0.0
        # the callbacks, bound once (not a new bound method per op)
        self.begin, self.sent = self._begin, self._sent
        self.on_computed = [self._computed]

    def _sender(self, tr, to_stage: int):
        """``start(key)`` of an async send: a timeout carrying the key, one NIC flow calling back
        with it, or the intra-node part's timeout then the NIC flow (``Engine._send`` otherwise)."""
        eng = self.eng
        arrive, after, flow = eng._arrive, self.after, eng.fabric.flow
        if not (eng.contention and tr.nics):
            seconds = tr.fixed_s + tr.offnode_s
            return lambda key: after(seconds, arrive, key)
        off, nics, share, fixed = tr.offnode_s, tr.nics, tr.priced_share_gbps, tr.fixed_s
        if off > 0 and fixed == 0:
            return lambda key: flow(off, nics, share, arrive, key)
        if off > 0 and fixed > 0:
            def offnode(key):
                flow(off, nics, share, arrive, key)
            return lambda key: after(fixed, offnode, key)
        return lambda key: eng._send(self.i, to_stage, key, "")

    def start(self) -> None:
        """Start the first op (at the current time)."""
        self._next()

    def _next(self) -> None:
        """Start the op at ``k`` once its input is there, or end the stream's pipeline."""
        k = self.k
        if k == self.n_ops:
            self.log.pipe_end = self.env.now
            self.done.succeed()
            return
        kind, mb, c = self.order[k]
        vs = c * self.p + self.i
        if kind == "F":
            key = ((vs * self.m + mb) << 1) if vs > 0 else None
        elif kind == "B":
            key = ((vs * self.m + mb) << 1) | 1 if vs < self.last_vs else None
        else:
            key = None  # a weight-grad pass needs only its own B, already done on this stage
        if key is not None:
            eng = self.eng
            arrived = eng.arrived
            if key in arrived:
                arrived.remove(key)
            else:
                eng.waiting[key] = self.begin
                return
        self._begin()

    def _begin(self) -> None:
        """Run the current op's compute (its input is there)."""
        kind, mb, c = self.order[self.k]
        ph = self.ph = self.phases[c][kind]
        if kind == "F" and self.record:
            self.eng._mem(self.log, self.act)
        busy = ph.compute + ph.tp
        if mb == self.m - 1 and kind == self.frees and not self.windows[c].triggered:
            now = self.env.now
            self.windows[c].succeed((now, now + busy))
        self.callbacks = self.on_computed
        self.env.schedule(self, NORMAL, busy)

    def _computed(self, _event) -> None:
        """The op's compute is over: book it, then its send (async, or a blocking slot)."""
        log, ph = self.log, self.ph
        log.compute += ph.compute
        log.tp += ph.tp
        self.eng.events += 1
        kind, mb, c = self.order[self.k]
        if kind == self.frees and self.record:
            self.eng._mem(log, -self.act)
        if kind != "W":
            to_vs = c * self.p + self.i + (1 if kind == "F" else -1)
            real = 0 <= to_vs <= self.last_vs
            to_key = ((to_vs * self.m + mb) << 1) | (kind != "F") if real else None
            if self.blocks:  # blocking slot: the real send, or the matching receive of an end stage
                self.to_key, self.s0 = to_key, self.env.now
                if real:
                    self._blocking(self.eng.plan.blocking_sends[(self.i, to_vs % self.p)])
                else:
                    self.after(self.eng.plan.stage_p2p[self.i], self.sent)
                return
            if real:
                if self.p == 1:
                    self.eng._arrive(to_key)
                else:
                    self.send[kind](to_key)
        self.k += 1
        self._next()

    def _blocking(self, tr) -> None:
        """Overlap off: the stage holds the send's fixed part, then its off-node part."""
        self.tr = tr
        if tr.fixed_s > 0:
            self.after(tr.fixed_s, self._blocking_offnode)
        else:
            self._blocking_offnode()

    def _blocking_offnode(self, _value=None) -> None:
        eng, tr = self.eng, self.tr
        if tr.offnode_s > 0:
            if eng.contention and tr.nics:
                eng.fabric.flow(tr.offnode_s, tr.nics, tr.priced_share_gbps, self.sent)
            else:
                self.after(tr.offnode_s, self.sent)
        else:
            self._sent()

    def _sent(self, _value=None) -> None:
        """The blocking slot is over: book it, deliver the send, start the next op."""
        self.log.p2p += self.env.now - self.s0
        if self.to_key is not None:
            self.eng._arrive(self.to_key)
        self.k += 1
        self._next()
