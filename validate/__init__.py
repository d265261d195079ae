"""Real ``torch.distributed`` jobs that check and fit the cost model.

Only this package imports torch, and only in the modules that run jobs (model, parallel, worker,
microbench, memory). The job description, results, launcher front end, calibration fit, report and
SLURM script writer are torch-free, so ``paraplan`` works without torch installed.
"""

from .job import JobSpec, parse_layout

__all__ = ["JobSpec", "parse_layout"]
