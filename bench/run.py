"""`make bench`: whole-reconcile fleet, placement, CEL (when present), response-size and server
concurrency benchmarks (subprocesses)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent


def main() -> int:
    status = 0
    for script in ("fleet_bench.py", "placement_bench.py", "cel_bench.py", "response_bench.py",
                   "server_bench.py"):
        path = HERE / script
        if not path.exists():
            print(f"({script} not present; skipped)")
            continue
        print(f"== {script}", flush=True)
        status |= subprocess.call([sys.executable, str(path), *sys.argv[1:]])
    return status


if __name__ == "__main__":
    raise SystemExit(main())
