"""The compute stream of one plain stage driven by simpy callbacks instead of a generator process.

A plain stage (no jitter, no trace, no ZeRO-3 gathers, exposed offload copies, context-parallel
exchanges or expert all-to-all flows: ``Engine.plain_stage``) runs each op as one simpy timeout of
its priced compute + TP seconds; the timeout's callback books the op and starts the next one. An
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
    so the one event is scheduled again (``Environment.schedule``, as a ``Timeout`` schedules
    itself) for each op instead of a new ``Timeout`` per op."""

    def __init__(self, eng, i: int):
        super().__init__(eng.env)
        self._ok, self._value = True, None  # a compute event succeeds, with no value
        self._on_computed = [self._computed]  # its callbacks, the same list each op
        self.eng, self.i = eng, i
        self.env = env = eng.env
        self.order = stage_order(eng.schedule, i, eng.p, eng.m, eng.v)
        self.k = 0  # index of the op in progress (or next to start)
        self.log = eng.logs[i]
        self.done = simpy.Event(env)
        self.plan = eng.plan.stages[i]
        self.act = self.plan.activation_bytes_per_microbatch / eng.v
        self.frees = "W" if eng.split else "B"
        # per chunk: (forward, backward, weight-grad) phases as the engine runs them
        self.phases = [(ch.fwd, b, ch.wgrad) for ch, b in zip(self.plan.chunks, eng.bwd[i])]
        self.windows = eng.windows[i]
        p = eng.p
        sends = eng.plan.sends
        self.send_to = {"F": sends.get((i, (i + 1) % p)), "B": sends.get((i, (i - 1) % p))}
        self.blocking = eng.plan.blocking_sends
        # the op in progress: its phase, and (after its compute) where its send goes
        self.ph = None
        self.to_key = 0
        self.real = False
        self.tr = None  # the blocking send in progress (overlap off)
        self.s0 = 0.0
        self.flow_after = {kind: self._flow_after(tr) for kind, tr in self.send_to.items() if tr is not None}

    def _flow_after(self, tr):
        """Callback of an async send's intra-node part: its NIC flow, calling back with the key."""
        flow, arrive = self.eng.fabric.flow, self.eng._arrive
        off, nics, share = tr.offnode_s, tr.nics, tr.priced_share_gbps
        return lambda event: flow(off, nics, share, arrive, event.value)

    def start(self) -> None:
        """Start the first op (at the current time)."""
        self._next()

    def _next(self) -> None:
        """Start the next op once its input is there, or end the stream's pipeline."""
        eng = self.eng
        if self.k == len(self.order):
            self.log.pipe_end = self.env.now
            self.done.succeed()
            return
        kind, mb, c = self.order[self.k]
        vs = c * eng.p + self.i
        if kind == "F":
            key = ((vs * eng.m + mb) << 1) if vs > 0 else None
        elif kind == "B":
            key = ((vs * eng.m + mb) << 1) | 1 if vs < eng.p * eng.v - 1 else None
        else:
            key = None  # a weight-grad pass needs only its own B, already done on this stage
        if key is not None:
            arrived = eng.arrived
            if key in arrived:
                arrived.remove(key)
            else:
                eng.waiting[key] = self._begin
                return
        self._begin()

    def _begin(self) -> None:
        """Run the current op's compute (its input is there)."""
        eng, env = self.eng, self.env
        kind, mb, c = self.order[self.k]
        fwd, bwd, wgrad = self.phases[c]
        if kind == "F":
            if eng.record_memory:
                eng._mem(self.log, self.act)
            ph = fwd
        elif kind == "B":
            ph = bwd
        else:
            ph = wgrad
        self.ph = ph
        busy = ph.compute + ph.tp
        if mb == eng.m - 1 and kind == self.frees and not self.windows[c].triggered:
            self.windows[c].succeed((env.now, env.now + busy))
        self.callbacks = self._on_computed
        env.schedule(self, NORMAL, busy)

    def _computed(self, _event) -> None:
        """The op's compute is over: book it, then its send (async, or a blocking slot)."""
        eng, log, ph = self.eng, self.log, self.ph
        kind, mb, c = self.order[self.k]
        log.compute += ph.compute
        log.tp += ph.tp
        eng.events += 1
        if kind == self.frees and eng.record_memory:
            eng._mem(log, -self.act)
        if kind == "W":
            self.k += 1
            self._next()
            return
        p = eng.p
        vs = c * p + self.i
        to_vs = vs + 1 if kind == "F" else vs - 1
        real = 0 <= to_vs <= p * eng.v - 1
        to_key = ((to_vs * eng.m + mb) << 1) | (kind != "F")
        if p == 1:
            if real:
                eng._arrive(to_key)
        elif eng.overlap:
            if real:
                self._async_send(kind, to_key, to_vs % p)
        else:  # blocking slot: the real send, or the matching receive of an end stage
            self.real, self.to_key, self.s0 = real, to_key, eng.env.now
            if real:
                self._blocking(eng.plan.blocking_sends[(self.i, to_vs % p)])
            else:
                eng.env.timeout(eng.plan.stage_p2p[self.i]).callbacks.append(self._sent)
            return
        self.k += 1
        self._next()

    def _async_send(self, kind: str, to_key: int, to_stage: int) -> None:
        """Overlap on: the send runs beside the next ops; its arrival wakes (or is noted for) its receiver."""
        eng = self.eng
        tr = self.send_to[kind]
        if not (eng.contention and tr.nics):
            eng.env.timeout(tr.fixed_s + tr.offnode_s, to_key).callbacks.append(eng._arrived)
        elif tr.offnode_s > 0 and tr.fixed_s >= 0:
            if tr.fixed_s == 0:
                eng.fabric.flow(tr.offnode_s, tr.nics, tr.priced_share_gbps, eng._arrive, to_key)
            else:  # the intra-node part (receiver's gather), then the NIC flow
                eng.env.timeout(tr.fixed_s, to_key).callbacks.append(self.flow_after[kind])
        else:
            eng._send(self.i, to_stage, to_key, "")

    def _blocking(self, tr) -> None:
        """Overlap off: the stage holds the send's fixed part, then its off-node part."""
        self.tr = tr
        if tr.fixed_s > 0:
            self.env.timeout(tr.fixed_s).callbacks.append(self._blocking_offnode)
        else:
            self._blocking_offnode(None)

    def _blocking_offnode(self, _event) -> None:
        eng, tr = self.eng, self.tr
        if tr.offnode_s > 0:
            if eng.contention and tr.nics:
                eng.fabric.flow(tr.offnode_s, tr.nics, tr.priced_share_gbps, self._sent)
            else:
                self.env.timeout(tr.offnode_s).callbacks.append(self._sent)
        else:
            self._sent(None)

    def _sent(self, _event=None) -> None:
        """The blocking slot is over: book it, deliver the send, start the next op."""
        eng = self.eng
        self.log.p2p += eng.env.now - self.s0
        if self.real:
            eng._arrive(self.to_key)
        self.k += 1
        self._next()
