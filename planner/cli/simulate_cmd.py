"""``paraplan simulate``: replay one step in the discrete-event simulator (trace, memory, contention)."""

from __future__ import annotations

from typing import Annotated, Optional

import typer
from rich.table import Table

from ..errors import SpecError
from ..specs.straggler import StragglerSpec, parse_slow_part
from ..units import check_number
from . import common as c
from .app import JSON_OPTION, app, console, print_json, write_atomic
from .progress import job_progress
from .render import fmt_bytes, fmt_seconds, render_estimate

#: Lognormal sigma of op-time noise at most: e^2 = 7.4x one way is noise no cluster shows.
MAX_JITTER = 2.0
#: Jittered replays at most (each is one full replay of the step).
MAX_SAMPLES = 10_000


def versus_analytic(result, analytic) -> Table:
    """Simulated against analytic time parts: what overlap and contention changed, and the NIC sharing."""
    sim = result.estimate
    what = "overlap, contention and the stragglers" if result.stragglers else "overlap and contention"
    table = Table(title=f"simulated vs analytic ({what} are what differ)")
    for col in ("part", "analytic", "simulated", "change"):
        table.add_column(col, justify="right" if col != "part" else "left")
    rows = [("step time", analytic.step_time_s, sim.step_time_s)]
    rows += [(k, v, getattr(sim.time, k)) for k, v in analytic.time.model_dump().items()]
    for name, a, b in rows:
        change = f"{(b - a) / a:+.1%}" if a > 0 else ("0" if b == 0 else "new")
        table.add_row(name, fmt_seconds(a), fmt_seconds(b), change)
    nics = [u for u in result.utilisation if u.resource.startswith("node ") and u.busy_s > 0]
    if nics:
        users = sum(u.mean_users * u.busy_s for u in nics) / sum(u.busy_s for u in nics)
        table.caption = (f"off-node transfers share each NIC with {users:.2f} ranks on average while it is busy "
                         f"({len(nics)} NIC directions in use)")
    return table


def with_stragglers(scenario, straggler: list[str] | None, variation: float, seed: int):
    """``scenario`` with the ``--straggler`` parts and ``--rank-variation`` (unchanged when none)."""
    if variation < 0 or variation >= 1:
        raise SpecError(f"{variation} must be in [0, 1)", field="--rank-variation")
    slow = [parse_slow_part(text) for text in straggler or []]
    if not slow and variation == 0:
        return scenario
    return scenario.model_copy(update={"stragglers": StragglerSpec(slow=slow, variation=variation, seed=max(0, seed))})


@app.command()
@c.scenario_options()
def simulate(
    trace: Annotated[Optional[str], typer.Option("--trace", help="Write a Chrome/Perfetto trace JSON here.")] = None,
    png: Annotated[Optional[str], typer.Option("--png", help="Write a PNG of the pipeline schedule here.")] = None,
    jitter: Annotated[float, typer.Option("--jitter", help=f"Lognormal sigma of op-time noise (0 = none, at most {MAX_JITTER:g}).")] = 0.0,
    samples: Annotated[int, typer.Option("--samples", help=f"Jittered runs for p10/p50/p90 (at most {MAX_SAMPLES:,}; progress is shown).")] = 1,
    seed: Annotated[int, typer.Option("--seed", help="Random seed of the jitter (0 to 2^32 - 1).")] = 0,
    no_overlap: Annotated[bool, typer.Option("--no-overlap", help="Replay the analytic overlap assumptions only.")] = False,
    no_contention: Annotated[bool, typer.Option("--no-contention", help="Do not share NIC bandwidth among transfers.")] = False,
    fine: Annotated[bool, typer.Option("--fine", help="Replay every micro-batch (default: replay the steady-state cycle and extend it, checked).")] = False,
    straggler: Annotated[Optional[list[str]], typer.Option("--straggler", help="A slow rank or node: rank=17,compute=0.8 or node=3,nic=0.5 (compute, link, nic: fractions of nominal; repeatable).")] = None,
    rank_variation: Annotated[float, typer.Option("--rank-variation", help="Per-rank compute speed variation, lognormal sigma (0.02 = 2 %; --seed draws it).")] = 0.0,
    json_out: bool = JSON_OPTION, scenario_flags: dict | None = None,
) -> None:
    """Simulate one training step event by event: schedule, overlap, NIC contention, memory over time."""
    from simulate import run
    from simulate.trace import trace_document, trace_json

    from ..outputs import PLOT_SUFFIXES, atomic_output, check_output, require_plotting

    check_output(trace, "--trace")
    check_output(png, "--png", suffixes=PLOT_SUFFIXES)
    if png:
        require_plotting("--png")
    check_number(jitter, "--jitter", at_least=0, at_most=MAX_JITTER)
    check_number(rank_variation, "--rank-variation", at_least=0, below=1)
    if not 1 <= samples <= MAX_SAMPLES:
        raise SpecError(f"{samples} is outside 1..{MAX_SAMPLES:,}", field="--samples")
    if samples > 1 and jitter <= 0:
        raise SpecError(f"{samples} samples without --jitter are {samples} identical runs; give --jitter SIGMA > 0",
                        field="--samples")
    if not 0 <= seed < 2**32:
        raise SpecError(f"{seed} is outside 0..2^32-1", field="--seed")
    scenario = c.build_scenario(**scenario_flags)
    scenario = with_stragglers(scenario, straggler, rank_variation, seed)
    with job_progress("simulated samples", samples, enabled=samples > 1 and not json_out) as progress:
        result = run(scenario, overlap=not no_overlap, contention=not no_contention, jitter=jitter,
                     samples=samples, seed=seed, trace=bool(trace or png), fine=fine,
                     progress=lambda done, total: progress.done(done, total=total))
    title = f"{scenario.model.name} on {scenario.gpus} x {scenario.hardware.name}, {scenario.layout.describe()}"
    if trace:
        write_atomic(trace, trace_json(trace_document(result.trace_events, scenario.layout.pp, title,
                                                      result.stage_labels)))
    if png:
        from simulate.plot import plot_schedule

        with atomic_output(png) as tmp:
            plot_schedule(result.trace_events, scenario.layout.pp, tmp, title)
    analytic = scenario.model_copy(update={"stragglers": StragglerSpec()}).estimate()  # the nominal step
    if json_out:
        payload = result.summary()
        payload["analytic"] = {"step_time_s": analytic.step_time_s, "time": analytic.time.model_dump()}
        print_json(payload)
        return
    console.print(render_estimate(result.estimate))
    console.print(versus_analytic(result, analytic))
    for line in result.stragglers:
        console.print(f"straggler: {line}")
    table = Table(title="resources (busy over the step)")
    for col in ("resource", "busy", "utilisation", "users / slowdown"):
        table.add_column(col)
    nics = sorted((u for u in result.utilisation if u.resource.startswith("node ")), key=lambda u: -u.busy_s)
    shown = [u for u in result.utilisation if not u.resource.startswith("node ")] + nics[:8]
    for u in shown:
        table.add_row(u.resource, fmt_seconds(u.busy_s), f"{u.utilisation:.0%}", f"{u.mean_users:.2f}")
    console.print(table)
    peaks = ", ".join(fmt_bytes(m.peak_bytes) for m in result.memory[:8])
    console.print(f"memory peaks per stage: {peaks}{' ...' if len(result.memory) > 8 else ''}")
    if result.percentiles:
        p = result.percentiles
        console.print(f"step time over {samples} samples: p10 {fmt_seconds(p['p10'])}, "
                      f"p50 {fmt_seconds(p['p50'])}, p90 {fmt_seconds(p['p90'])}")
    for line in result.folded:
        console.print(f"folded by symmetry: {line}")
    console.print(f"{result.events} compute events replayed in {result.wall_s:.2f} s "
                  f"({result.events / max(result.wall_s, 1e-9):,.0f} events/s)")
    for path in (trace, png):
        if path:
            console.print(f"wrote {path}")
