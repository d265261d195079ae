"""The run as it really goes: a run plan's stages priced one by one, with checkpoints, failures and
restarts, summed into days, GPU-hours, energy and cost (``paraplan run PLAN``).

``planner.run.loader.load_run_plan`` reads a plan, ``planner.run.engine.price_run`` prices it;
``planner.run.failures.stage_reliability`` prices one estimate's checkpoints and failures (``--tokens``
with ``--failure-rate``). The package imports nothing itself, so each caller loads only what it uses.
"""
