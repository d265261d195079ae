"""Discrete-event (simpy) replay of a training step: the work of ``planner.work`` at the prices of
``planner.pricing``, with pipeline schedules, overlap, NIC contention, trace and memory timeline."""

from .runner import ResourceUse, SimulationResult, run, simulate_estimate

__all__ = ["ResourceUse", "SimulationResult", "run", "simulate_estimate"]
