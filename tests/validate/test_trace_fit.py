"""The trace fit (validate.trace_fit through validate.calibrate.calibrate) recovers the parameters that made
a synthetic trace: each class of every job's step is what the cost model prices under a known profile."""

from __future__ import annotations

import pytest

pytest.importorskip("pandas")

from planner.cost import estimate  # noqa: E402
from planner.trace.measure import HOST, RankMeasure, Samples, StepMeasure  # noqa: E402
from planner.trace.run import TracedRun  # noqa: E402
from validate.calibrate import base_profile_data, calibrate, nest, profile_with  # noqa: E402
from validate.job import JobSpec, layout_for_nproc, layout_text, tiny_model  # noqa: E402
from validate.trace_fit import TracedJob, nonnegative_fit  # noqa: E402

pytestmark = pytest.mark.validate

TRUTH = {"device.kernel_overhead_us": 150.0, "node.collective_latency_us": 3000.0, "node.p2p_latency_us": 300.0}


def synthetic_job(text: str, truth: dict, global_batch: int = 8) -> TracedJob:
    """A traced job whose classes are the cost model's under ``truth``: compute classes without the per-kernel
    cost, which shows as host time; collectives and the pipeline's waits as priced."""
    base, path = base_profile_data("cpu-host")
    prof = profile_with(base, nest(truth), path)
    job = JobSpec(model=tiny_model(), layout=layout_for_nproc(text, None), global_batch_size=global_batch)
    est = estimate(job.effective_model(), prof, job.training_spec(), job.layout, breakdown=True)
    per_kernel = prof.device.kernel_overhead_us * 1e-6
    classes, counts, host = {}, {}, 0.0
    for c in est.ops.classes:
        charged = c.kernels * per_kernel if not c.kind.startswith("comm:") and c.kind != "optimizer" else 0.0
        classes[c.kind], counts[c.kind] = c.seconds - charged, c.kernels
        host += charged
    classes[HOST] = host
    if est.time.pp_comm + est.time.pp_bubble:
        classes["comm:send-recv"] = est.time.pp_comm + est.time.pp_bubble
    step = StepMeasure(step=0, seconds=est.step_time_s, classes=classes, counts=counts)
    run = TracedRun(ranks=[RankMeasure(rank=0, device="cpu", steps=[step], samples=Samples())], on_gpu=False)
    return TracedJob(name=layout_text(job.layout), model=job.effective_model(), training=job.training_spec(),
                     layout=job.layout, run=run, folder="synthetic")


def test_trace_fit_recovers_overhead_collective_and_p2p_latency():
    jobs = [synthetic_job(t, TRUTH) for t in ("tp=2", "pp=2", "dp=2,fsdp", "tp=2,sp")]
    rep = calibrate("cpu-host", None, jobs, held_out="tp=2,pp=1,dp=1,sp", date="2026-01-01")
    assert rep.overlay["calibration"]["fitted_layouts"] == [
        "tp=1,pp=1,dp=2,fsdp", "tp=1,pp=2,dp=1,schedule=1f1b", "tp=2,pp=1,dp=1"]
    assert rep.overlay["device"]["kernel_overhead_us"] == pytest.approx(150.0, rel=1e-3)
    assert rep.overlay["node"]["collective_latency_us"] == pytest.approx(3000.0, rel=1e-2)
    assert rep.overlay["node"]["p2p_latency_us"] == pytest.approx(300.0, rel=1e-2)
    assert [r.layout for r in rep.layouts if r.held_out] == ["tp=2,pp=1,dp=1,sp"]
    assert abs(rep.held_out_error_pct[0]) < 1.0  # the same model made the data: the held-out is predicted too
    assert all(abs(r.error_after_pct) < 1.0 for r in rep.layouts)
    sources = rep.overlay["sources"]
    assert "host time between ops" in sources["device.kernel_overhead_us"]
    assert "send/recv waits" in sources["node.p2p_latency_us"]


def test_host_time_per_call_goes_into_the_collective_latency():
    """Host seconds that grow with the collective calls (DTensor / FSDP Python around each call) are fitted
    per call and priced in the collective latency, not per kernel."""
    jobs = [synthetic_job(t, TRUTH) for t in ("tp=2", "pp=2", "dp=2,fsdp")]
    for j in jobs:
        calls = sum(n for c, n in j.run.ranks[0].steps[0].counts.items() if c.startswith("comm:"))
        j.run.ranks[0].steps[0].classes[HOST] += 500e-6 * calls
    rep = calibrate("cpu-host", None, jobs, held_out=None, date="2026-01-01")
    assert rep.overlay["device"]["kernel_overhead_us"] == pytest.approx(150.0, rel=1e-2)
    assert rep.overlay["node"]["collective_latency_us"] == pytest.approx(3500.0, rel=2e-2)


def test_nonnegative_fit_keeps_both_terms_at_or_above_zero():
    assert nonnegative_fit([(1.0, 0.0), (0.0, 1.0), (1.0, 1.0)], [2.0, 3.0, 5.0]) == pytest.approx((2.0, 3.0))
    a, b = nonnegative_fit([(1.0, 1.0), (1.0, 2.0)], [3.0, 1.0])  # free optimum has b < 0
    assert b == 0.0 and a == pytest.approx(2.0)


def test_collectives_that_span_nodes_pin_the_inter_node_latency():
    truth = {**TRUTH, "network.latency_us": 700.0}
    jobs = [synthetic_job(t, truth, global_batch=32) for t in ("tp=2", "dp=16,fsdp", "pp=2")]
    rep = calibrate("cpu-host", None, jobs, held_out=None, date="2026-01-01")
    assert rep.overlay["node"]["collective_latency_us"] == pytest.approx(3000.0, rel=2e-2)
    # the synthetic trace records no message sizes: the bandwidth share of each call is fitted as latency
    assert rep.overlay["network"]["latency_us"] == pytest.approx(700.0, rel=0.1)
    assert "collective calls" in rep.overlay["sources"]["network.latency_us"]
