"""simpy replay of one pipeline: one process per stage (its compute stream), pipeline sends as
transfers (blocking on the compute stream with overlap off, async with overlap on), a process per
stage for the bucketed data-parallel reduction, and the NIC fabric shared by all transfers.

Overlap off replays the analytic model's assumptions as events: each forward / backward chunk
holds one blocking transfer slot (the stage's send or its matching receive, Megatron's paired
p2p), ZeRO-3 gathers leave exposed the analytic ``zero3_exposed``, and the gradient reduction
starts with the stage's last backward (``overlap_dp_comm``) or after it. Overlap on: sends run
beside compute, ZeRO-3 gathers are prefetched layer by layer (a two-machine flow shop) and the
reduction goes out in per-layer buckets as the last backward produces them. Times in seconds.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np
import simpy

from planner.cost.bottleneck_booking import hidden_compute
from planner.gc_pause import cyclic_gc_paused
from planner.pricing.compute import beside_slowdown

from .entities import PhaseTime, SimPlan, Transfer
from .fabric import NicFabric
from .schedules import splits_weight_grad, stage_order
from .stream import StageStream
from .timers import TimerPool


@dataclass
class StageLog:
    """What one stage did: busy seconds by kind, pipeline end, finish, memory points, grad windows."""

    compute: float = 0.0
    tp: float = 0.0
    cp: float = 0.0  # exposed context-parallel exchange (priced, plus waits on slowed ring sends)
    p2p: float = 0.0  # blocking send/receive slots
    zero3: float = 0.0  # exposed ZeRO-3 communication
    offload: float = 0.0  # host-link copies not hidden by the micro-batch's compute (planner.pricing.hostlink)
    pipe_end: float = 0.0
    finish: float = 0.0
    reduce_done: float = 0.0
    comm_busy: float = 0.0  # seconds the gradient reduction transfers took (observed)
    memory: list[tuple[float, float]] = field(default_factory=list)  # (t, activation bytes)
    peak_activation_bytes: float = 0.0


class Engine:
    """One simulated step of ``plan``."""

    def __init__(self, plan: SimPlan, *, overlap: bool, contention: bool, jitter: float, seed: int,
                 trace: bool, micro_batches: int | None = None, record_memory: bool = True):
        """``micro_batches`` replays that many micro-batches instead of the step's (the coarse
        replay of ``simulate.coarse`` runs a few short pipelines and extrapolates, and needs no
        memory curve: ``record_memory=False``)."""
        self.plan = plan
        self.env = simpy.Environment()
        self.overlap = overlap
        self.contention = contention
        self.fabric = NicFabric(self.env, plan.nic_gbps)
        self.timers = TimerPool(self.env)
        layout = plan.step.layout
        self.p = layout.pp
        self.m = plan.step.micro_batches if micro_batches is None else micro_batches
        self.v = layout.vpp if layout.schedule == "interleaved-1f1b" else 1
        self.schedule = layout.schedule
        self.split = splits_weight_grad(layout.schedule)
        self.overlap_dp = plan.step.training.overlap_dp_comm
        self.rng = np.random.default_rng(seed) if jitter > 0 else None
        self.sigma = jitter
        self._noise = np.empty(0)
        self._noise_i = 0
        self.logs = [StageLog() for _ in range(self.p)]
        # arrivals of pipeline sends, keyed by the int (virtual stage * m + micro-batch) * 2 + (0 for
        # an activation, 1 for a gradient) -- no tuple per event: keys that arrived before their
        # receiver asked, and the events receivers wait on for the others
        self.arrived: set[int] = set()
        self.waiting: dict[int, Callable[[], None]] = {}  # key -> what its receiver does on arrival
        # the backward phase of each chunk as the engine runs it (input-grad + weight-grad unless split)
        self.bwd = [[ch.bwd if self.split else _add(ch.bwd, ch.wgrad) for ch in st.chunks] for st in plan.stages]
        self.windows = [[self.env.event() for _ in range(self.v)] for _ in range(self.p)]
        self.trace = [] if trace else None
        self.record_memory = record_memory
        self.flow_id = 0
        self.flow_pending: dict[int, int] = {}  # send key -> flow id, ended on the op that consumes it
        self.events = 0

    # ---- helpers -------------------------------------------------------------------------
    def noise(self) -> float:
        """Mean-one lognormal multiplier (sigma = jitter), 1.0 without jitter."""
        if self.rng is None:
            return 1.0
        if self._noise_i >= len(self._noise):
            s = self.sigma
            self._noise = self.rng.lognormal(-s * s / 2, s, 65536)
            self._noise_i = 0
        self._noise_i += 1
        return float(self._noise[self._noise_i - 1])

    def _arrive(self, key) -> None:
        """A send of ``key`` is complete: wake its receiver, or note it for when it asks."""
        start = self.waiting.pop(key, None)
        if start is None:
            self.arrived.add(key)
        else:
            start()

    def _x(self, pid: int, tid: int, name: str, start: float, dur: float, args=None) -> None:
        if self.trace is not None and dur > 0:
            ev = {"name": name, "ph": "X", "pid": pid, "tid": tid, "ts": start * 1e6, "dur": dur * 1e6}
            if args:
                ev["args"] = args
            self.trace.append(ev)

    def transfer(self, tr: Transfer):
        """Generator: the transfer's fixed part, then its off-node part (through the NICs when
        contention is on), scaled by jitter."""
        k = self.noise()
        if tr.fixed_s > 0:
            yield self.env.timeout(tr.fixed_s * k)
        if tr.offnode_s > 0:
            if self.contention and tr.nics:
                yield self.fabric.flow(tr.offnode_s * k, tr.nics, tr.priced_share_gbps)
            else:
                yield self.env.timeout(tr.offnode_s * k)

    def _single_event(self, tr: Transfer) -> simpy.Event | None:
        """Without jitter, the completion event of a transfer made of one timed part (what
        ``transfer`` would wait on); None when ``transfer`` must run as a generator."""
        if self.rng is not None or tr.fixed_s < 0 or tr.offnode_s < 0:
            return None
        if tr.fixed_s > 0:
            return None if tr.offnode_s > 0 else self.env.timeout(tr.fixed_s)
        if tr.offnode_s <= 0:
            return None
        if self.contention and tr.nics:
            return self.fabric.flow(tr.offnode_s, tr.nics, tr.priced_share_gbps)
        return self.env.timeout(tr.offnode_s)

    def _timed(self, tr: Transfer):
        """Generator: the transfer; returns its finish time."""
        yield from self.transfer(tr)
        return self.env.now

    def _send(self, stage: int, to_stage: int, key, label: str):
        """Async send (overlap on): arrival event fires when the transfer is done."""
        tr = self.plan.sends[(stage, to_stage)]
        start = self.env.now
        if not (self.contention and tr.nics) and self.rng is None:
            t = self.env.timeout(tr.seconds)
            t.callbacks.append(lambda _e: self._arrive(key))
            self._flow_trace(stage, to_stage, start, tr.seconds, label, key)
            return

        def finish(_e=None):
            self._flow_trace(stage, to_stage, start, self.env.now - start, label, key)
            self._arrive(key)

        if self.rng is None and tr.fixed_s >= 0 and tr.offnode_s > 0:  # no jitter: no process
            if tr.fixed_s == 0:  # one NIC flow
                self.fabric.flow(tr.offnode_s, tr.nics, tr.priced_share_gbps, finish)
            else:  # the intra-node part, then the NIC flow
                self.env.timeout(tr.fixed_s).callbacks.append(
                    lambda _e: self.fabric.flow(tr.offnode_s, tr.nics, tr.priced_share_gbps, finish))
            return

        def proc():
            yield from self.transfer(tr)
            finish()
        self.env.process(proc())

    def _flow_trace(self, stage: int, to_stage: int, start: float, dur: float, label: str, key: int) -> None:
        """The send's slice and the start of its flow arrow (Perfetto flow events), bound to that slice;
        the arrow ends on the receiving op's slice (``_flow_end``), so each send lands where it is used."""
        if self.trace is None or dur <= 0:
            return
        tid = 1 if label.startswith("act") else 2
        self._x(stage, tid, f"send {label}", start, dur, {"to_stage": to_stage})
        self.flow_id += 1
        self.trace.append({"name": "p2p", "cat": "pipeline", "ph": "s", "id": self.flow_id, "pid": stage,
                           "tid": tid, "ts": (start + dur / 2) * 1e6})
        self.flow_pending[key] = self.flow_id

    def _flow_end(self, i: int, kind: str, mb: int, c: int, start: float, dur: float) -> None:
        """End the flow of the send this op consumed (an activation for F, a gradient for B) inside the
        op's slice on stage i's compute track."""
        if kind == "W" or dur <= 0:
            return
        key = (((c * self.p + i) * self.m + mb) << 1) | (kind != "F")
        fid = self.flow_pending.pop(key, None)
        if fid is not None:
            self.trace.append({"name": "p2p", "cat": "pipeline", "ph": "f", "bp": "e", "id": fid, "pid": i,
                               "tid": 0, "ts": (start + dur / 2) * 1e6})

    # ---- stage process -------------------------------------------------------------------
    def _mem(self, log: StageLog, delta: float) -> None:
        if self.record_memory:
            cur = (log.memory[-1][1] if log.memory else 0.0) + delta
            log.memory.append((self.env.now, cur))

    def _op(self, i: int, kind: str, mb: int, c: int):
        """Generator: run one op on stage i's compute stream, then its send."""
        env, plan, log = self.env, self.plan.stages[i], self.logs[i]
        ch = plan.chunks[c]
        vs, last_vs = c * self.p + i, self.p * self.v - 1
        start = env.now
        act = plan.activation_bytes_per_microbatch / self.v
        if kind == "F":
            self._mem(log, act)
            ph = ch.fwd
            z3 = plan.zero3_fwd
        elif kind == "B":
            ph = self.bwd[i][c]
            z3 = plan.zero3_bwd
        else:
            ph, z3 = ch.wgrad, None
        final_grad = mb == self.m - 1 and (kind == "W" or (kind == "B" and not self.split))
        k = 1.0 if self.rng is None else self.noise()
        busy = ph.total * k
        cp_tr = ch.cp_fwd if kind == "F" else (ch.cp_bwd if kind == "B" else None)
        # context-parallel sends load the NICs beside the blocks (contention on); the op ends when both
        # its priced time and its sends are done (without contention the priced time already holds them)
        cp_flow = (self.fabric.flow(cp_tr.offnode_s * k, cp_tr.nics, cp_tr.priced_share_gbps)
                   if self.contention and cp_tr is not None else None)
        if final_grad and not self.windows[i][c].triggered:
            self.windows[i][c].succeed((start, start + busy))
        hidden = 0.0  # compute run under longer ZeRO-3 traffic: booked as communication (as the analytic)
        if kind != "W" and plan.zero3_fwd is not None:
            if not self.overlap or plan.zero3_serialized:  # the analytic exposed time, half per pass
                beside = plan.zero3_beside / 2 / self.v * k
                yield env.timeout(busy + beside + plan.zero3_exposed / 2 / self.v * k)
                hidden = plan.zero3_hidden[kind != "F"] / self.v * k - beside  # booked as compute
            else:  # per-layer prefetch: g + C, then the last layer after the last gather
                n = max(1, ch.layers)
                comm = env.process(self._timed(z3))
                yield env.timeout(z3.seconds / n * k + busy)
                if not comm.triggered:
                    yield comm
                rest = comm.value + busy / n - env.now
                if rest > 0:
                    yield env.timeout(rest)
                # the compute beside the comm ran on the SMs it left free (planner.pricing.compute.beside_slowdown)
                slow = plan.comm_slowdown_fwd if kind == "F" else plan.comm_slowdown
                beside = beside_slowdown(busy, comm.value - start, slow)
                if beside > 0:
                    yield env.timeout(beside)
                hidden = hidden_compute(ph.compute * k, comm.value - start, slow) - beside  # booked as compute
            log.zero3 += env.now - start - busy + hidden
        elif ph.offnode > 0 and self.contention and plan.a2a_nics:  # expert all-to-alls on the fabric
            yield env.timeout(busy - ph.offnode * k)
            yield self.fabric.flow(ph.offnode * k, plan.a2a_nics, plan.a2a_share_gbps)
        else:
            yield env.timeout(busy)
        extra = plan.offload_exposed / 2 / self.v * k if kind != "W" else 0.0
        if extra > 0:  # exposed host-link copies, half in forward, half in backward (as the analytic pass)
            yield env.timeout(extra)
            log.offload += extra
        log.compute += ph.compute * k - hidden
        log.tp += ph.tp * k
        log.cp += ph.cp * k
        if cp_flow is not None and not cp_flow.triggered:
            s_wait = env.now
            yield cp_flow
            log.cp += env.now - s_wait
        self.events += 1
        if self.trace is not None:
            name = {"F": "forward", "B": "backward" if not self.split else "backward-input",
                    "W": "backward-weight"}[kind]
            self._x(i, 0, f"{name} mb{mb}" + (f" c{c}" if self.v > 1 else ""), start, env.now - start,
                    {"micro_batch": mb, "chunk": c,
                     "blocks": ", ".join(f"{b} x{n}" if n > 1 else b for b, n in ch.blocks if n)})
            self._flow_end(i, kind, mb, c, start, env.now - start)
        if kind == "W" or (kind == "B" and not self.split):
            self._mem(log, -act)
        if kind == "W":
            return
        to_vs = vs + 1 if kind == "F" else vs - 1
        real = 0 <= to_vs <= last_vs
        key = ((to_vs * self.m + mb) << 1) | (kind != "F")
        to_stage = to_vs % self.p
        if self.p == 1:
            if real:
                self._arrive(key)
            return
        if self.overlap:
            if real:
                self._send(i, to_stage, key, f"{'act' if kind == 'F' else 'grad'} mb{mb}")
            return
        s0 = env.now  # blocking slot: the real send, or the matching receive of an end stage
        if real:
            tr = self.plan.blocking_sends[(i, to_stage)]
            done = self._single_event(tr)
            if done is None:
                yield from self.transfer(tr)
            else:
                yield done
        else:
            yield env.timeout(self.plan.stage_p2p[i] * self.noise())
        log.p2p += env.now - s0
        if real:
            self._flow_trace(i, to_stage, s0, env.now - s0, f"{'act' if kind == 'F' else 'grad'} mb{mb}", key)
            self._arrive(key)

    def plain_stage(self, i: int) -> bool:
        """True when stage ``i`` can run as a callback-driven ``StageStream``: no jitter, no trace,
        and none of ZeRO-3 gathers, exposed offload copies, context-parallel exchanges or expert
        all-to-all flows (those take ``_op``)."""
        if self.trace is not None or self.rng is not None:
            return False
        plan, bwd = self.plan.stages[i], self.bwd[i]
        a2a_flows = self.contention and bool(plan.a2a_nics) and any(
            ch.fwd.offnode > 0 or b.offnode > 0 for ch, b in zip(plan.chunks, bwd))
        return (plan.zero3_fwd is None and not plan.offload_exposed > 0 and not a2a_flows
                and all(ch.fwd.cp == 0 and ch.cp_fwd is None and ch.cp_bwd is None for ch in plan.chunks)
                and all(b.cp == 0 for b in bwd))

    def _stage(self, i: int):
        """Generator: stage i's op order, each op through ``_op`` once its input has arrived."""
        env = self.env
        p, m, last_vs = self.p, self.m, self.p * self.v - 1
        arrived, waiting = self.arrived, self.waiting
        for kind, mb, c in stage_order(self.schedule, i, self.p, self.m, self.v):
            vs = c * p + i
            if kind == "F":
                key = ((vs * m + mb) << 1) if vs > 0 else None
            elif kind == "B":
                key = ((vs * m + mb) << 1) | 1 if vs < last_vs else None
            else:
                key = None  # a weight-grad pass needs only its own B, already done on this stage
            if key is not None:
                if key in arrived:
                    arrived.remove(key)
                else:
                    ev = env.event()
                    waiting[key] = ev.succeed
                    yield ev
            yield from self._op(i, kind, mb, c)
        self.logs[i].pipe_end = env.now

    def _dp(self, i: int, pipeline_done: simpy.Event):
        """Gradient reduction (bucketed when overlapping), optimizer, ZeRO-1/2 parameter gather."""
        env, plan, log = self.env, self.plan.stages[i], self.logs[i]
        if plan.dp_reduce:
            if not self.overlap:  # the whole reduction from the stage's last backward on
                w = self.windows[i][self.v - 1]
                if not w.triggered:
                    yield w
                if not self.overlap_dp:
                    yield pipeline_done
                elif w.value[0] > env.now:
                    yield env.timeout(w.value[0] - env.now)
                s0 = env.now
                reduce_start = s0
                for tr in plan.dp_reduce:
                    yield from self.transfer(tr)
                log.comm_busy += env.now - s0
                self._x(i, 3, "dp reduce", s0, env.now - s0)
            else:  # per-layer buckets as each chunk's last backward produces them
                n_total = sum(max(1, ch.layers) for ch in plan.chunks)
                reduce_start = None
                for c in reversed(range(self.v)):
                    w = self.windows[i][c]
                    if not w.triggered:
                        yield w
                    s, e = w.value
                    n = max(1, plan.chunks[c].layers)
                    for j in range(n):
                        release = s + (j + 1) * (e - s) / n
                        if not self.overlap_dp:
                            if not pipeline_done.triggered:
                                yield pipeline_done
                        elif release > env.now:
                            yield env.timeout(release - env.now)
                        s0 = env.now
                        reduce_start = s0 if reduce_start is None else reduce_start
                        for tr in plan.dp_reduce:
                            yield from self.transfer(tr.scaled(1 / n_total))
                        log.comm_busy += env.now - s0
                        self._x(i, 3, f"dp reduce bucket c{c}.{j}", s0, env.now - s0)
            log.reduce_done = env.now
        if not pipeline_done.triggered:
            yield pipeline_done
        if plan.dp_reduce and self.overlap_dp and plan.comm_slowdown > 0:  # the stage's last backward beside the
            w_start, w_end = self.windows[i][self.v - 1].value  # reduction ran on the SMs it left free
            beside = min(log.reduce_done - reduce_start, w_end - w_start)
            yield env.timeout(beside * plan.comm_slowdown)
        s0 = env.now
        yield env.timeout(plan.optimizer * self.noise())
        self._x(i, 0, "optimizer", s0, env.now - s0)
        s0 = env.now
        for tr in plan.dp_gather:
            yield from self.transfer(tr)
        self._x(i, 3, "params all-gather", s0, env.now - s0)
        log.finish = env.now

    def run(self) -> None:
        """Run the step to completion."""
        for i in range(self.p):
            if self.plain_stage(i):
                stream = StageStream(self, i)
                stream.start()
                done = stream.done
            else:
                done = self.env.process(self._stage(i))
            self.env.process(self._dp(i, done))
        # the replay makes ~10^5 short-lived objects that reference counting frees: no cyclic-garbage
        # passes over them (and over everything a CLI process imported)
        with cyclic_gc_paused():
            self.env.run()
        for log in self.logs:
            peak = max((b for _, b in log.memory), default=0.0)
            log.peak_activation_bytes = peak


def _add(a, b):
    return PhaseTime(a.compute + b.compute, a.tp + b.tp, a.cp + b.cp, a.offnode + b.offnode)
