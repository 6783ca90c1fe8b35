"""The full chaos suite (issue 11): every scenario of tests/chaos/scenarios.py at full scale, with figures.

    .venv/bin/python bench/chaos.py            # all scenarios
    .venv/bin/python bench/chaos.py maxmemory  # some

Each scenario starts its own redis-server and two hub processes, runs two writers (every ack recorded)
and two followers (the project client and a plain websockets one) through the fault, then checks:
0 acknowledged mutations lost (or, where Redis itself loses them, each loss visible as a reset),
0 applied twice, 0 replicas differing from the stored document. docs/durability.md quotes the output.
"""

from __future__ import annotations

import asyncio
import json
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(ROOT / "tests" / "chaos"), str(ROOT / "tests")]

from scenarios import SCENARIOS, Scale, run


async def main(names: list[str]) -> int:
    failed = 0
    for name in names:
        started = time.monotonic()
        with tempfile.TemporaryDirectory(prefix=f"chaos-{name}-") as tmp:
            try:
                verdict, figures = await run(name, Path(tmp), Scale.full())
            except AssertionError as exc:
                failed += 1
                print(f"{name:24} FAILED: {exc}", flush=True)
                continue
        row = {
            "acked": verdict.acked,
            "lost_visibly": len(verdict.lost),
            "duplicated": len(verdict.duplicated),
            "divergent": len(verdict.divergent),
            "resets": verdict.resets,
            **figures,
            "scenario_s": round(time.monotonic() - started, 1),
        }
        print(f"{name:24} {json.dumps(row)}", flush=True)
    return failed


if __name__ == "__main__":
    sys.exit(asyncio.run(main(sys.argv[1:] or list(SCENARIOS))))
