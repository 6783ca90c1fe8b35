"""Short versions of every chaos scenario (tests/chaos/scenarios.py); `python bench/chaos.py` runs the long ones."""

from __future__ import annotations

from pathlib import Path

import pytest
from scenarios import SCENARIOS, Scale, run

pytestmark = pytest.mark.chaos


@pytest.mark.parametrize("name", list(SCENARIOS))
async def test_scenario_loses_duplicates_and_diverges_nothing(name: str, tmp_path: Path) -> None:
    verdict, figures = await run(name, tmp_path, Scale.short())
    assert verdict.acked > 0, "no mutation was acknowledged: the load never ran"
    print(name, verdict, figures)
