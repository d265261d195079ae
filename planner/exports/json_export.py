"""The paraplan scenario JSON of a plan (read back by ``estimate --layout FILE``)."""

from __future__ import annotations

import json

from ..scenario import Scenario


def scenario_json(scenario: Scenario) -> str:
    """The scenario as indented JSON (one value per line, so it fits any terminal width)."""
    return json.dumps(scenario.to_file_dict(), indent=2) + "\n"
