"""How long `cimhub --help` and `cimhub token --help` take, against a bare `python3 -c pass` in the same run.

The CLI imports its heavy libraries (the clients, the hub, LangGraph) only in
the command that uses them; this prints wall and CPU time per run (median of
N) and the modules `--help` loads, so a regression shows as a number.

    .venv/bin/python bench/bench_cli.py [--runs 20]
"""

from __future__ import annotations

import argparse
import os
import resource
import statistics
import subprocess
import sys
import time
from pathlib import Path

BIN = Path(sys.executable).parent


def measure(argv: list[str], runs: int) -> tuple[float, float]:
    """Median wall seconds and median CPU seconds (user + system) of running `argv`."""
    walls, cpus = [], []
    for _ in range(runs):
        before = resource.getrusage(resource.RUSAGE_CHILDREN)
        start = time.perf_counter()
        subprocess.run(argv, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, check=True)
        walls.append(time.perf_counter() - start)
        after = resource.getrusage(resource.RUSAGE_CHILDREN)
        cpus.append((after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime))
    return statistics.median(walls), statistics.median(cpus)


def loaded_roots() -> list[str]:
    """Third-party top-level packages that `cimhub --help` imports."""
    probe = (
        "import sys; from cimhub.clients.cli import main\n"
        "try:\n    main(['--help'])\nexcept SystemExit:\n    pass\n"
        "print(' '.join(sorted({m.split('.')[0] for m in sys.modules})), file=sys.stderr)"
    )
    done = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True)
    stdlib = set(sys.stdlib_module_names)
    return [m for m in done.stderr.split() if m not in stdlib and not m.startswith("_")]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=20)
    runs = parser.parse_args().runs
    cases = [
        ("python3 -c pass (floor)", [sys.executable, "-c", "pass"]),
        ("cimhub --help", [str(BIN / "cimhub"), "--help"]),
        ("cimhub token --help", [str(BIN / "cimhub"), "token", "--help"]),
        ("cimhub agent --help", [str(BIN / "cimhub"), "agent", "--help"]),
    ]
    print(f"{'command':<26} {'wall ms':>8} {'cpu ms':>8}   (median of {runs}; {os.cpu_count()} cores)")
    for label, argv in cases:
        wall, cpu = measure(argv, runs)
        print(f"{label:<26} {wall * 1000:>8.0f} {cpu * 1000:>8.0f}")
    print("third-party packages loaded by `cimhub --help`:", " ".join(loaded_roots()))


if __name__ == "__main__":
    main()
