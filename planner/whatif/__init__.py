"""What-if analysis: change a scenario with ``KEY=VALUE`` settings, compare, sweep, sensitivity.

The library never prints; ``planner.cli.whatif_cmd`` and ``planner.cli.explore_app`` render.
"""

from .compare import Bottleneck, Column, Comparison, Delta, bottleneck_of, compare, get_engine, split_variant
from .keys import ALIASES, FIELD_ALIASES, apply_settings, parse_assignment, read_key, valid_keys
from .sensitivity import PARAMETERS, Elasticity, Sensitivity, sensitivity
from .sweep import MODES, SweepPoint, SweepResult, base_at_first_point, parse_vary, search_replanner, sweep

__all__ = [
    "ALIASES", "FIELD_ALIASES", "MODES", "PARAMETERS", "Bottleneck", "Column", "Comparison", "Delta",
    "Elasticity", "Sensitivity", "SweepPoint", "SweepResult", "apply_settings", "base_at_first_point",
    "bottleneck_of", "compare", "get_engine", "parse_assignment", "parse_vary", "read_key", "sensitivity",
    "search_replanner", "split_variant", "sweep", "valid_keys",
]
