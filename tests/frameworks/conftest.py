"""The `frameworks` test group: exports checked by the frameworks' own parsers and validators.

The frameworks' configuration code lives in a separate folder (tests/frameworks/install.sh, which
.ci/run calls), put on PYTHONPATH of one subprocess per framework only, so the rest of the suite
never imports it. Without that folder the group is skipped locally; under CI (CI=true) a missing
install is a failure, so the group cannot pass by not running.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


def framework_site() -> Path:
    return Path(os.environ.get("PARAPLAN_FRAMEWORKS_SITE", ROOT / ".frameworks" / "site"))


@pytest.fixture(scope="session")
def site() -> Path:
    path = framework_site()
    if not (path / ".paraplan-frameworks").exists():
        message = f"frameworks not installed in {path}: run tests/frameworks/install.sh"
        if os.environ.get("CI"):
            pytest.fail(message)
        pytest.skip(message)
    return path
