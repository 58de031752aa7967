"""Browser latency benchmark: key press -> new frame for every control of every live widget.

    python benchmarks/bench_browser.py                      # every notebook (a few minutes)
    python benchmarks/bench_browser.py 02_linear 05_snpe    # only these notebooks (pytest -k)

Runs tests/browser/latency_probe.py through the project's browser harness (a throw-away
JupyterLab, Debian's headless Chromium; see tests/browser/conftest.py), then prints, per
control, the median and maximum time from the key press to the widget's new frame, as
measured inside the page, and the ratio to the course's target (<= 100 ms median,
<= 200 ms max). Prints only; timings are machine-dependent.
"""

from __future__ import annotations

import json
import os
import statistics
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "artifacts" / "browser" / "latency.json"
TARGET_MEDIAN, TARGET_MAX = 100.0, 200.0


def main(argv: list[str]) -> int:
    if RESULTS.exists():
        RESULTS.unlink()
    cmd = [sys.executable, "-m", "pytest", "-q", "-s", "-p", "no:randomly", "-p", "no:cacheprovider",
           "-o", "addopts=", str(ROOT / "tests" / "browser" / "latency_probe.py")]
    if argv:
        cmd += ["-k", " or ".join(argv)]
    env = dict(os.environ, QLIB_LATENCY_RESULTS=str(RESULTS))
    proc = subprocess.run(cmd, cwd=ROOT, env=env)
    if not RESULTS.exists():
        print("no measurements (is Chromium installed? see tests/browser/conftest.py)")
        return proc.returncode or 1
    rows = json.loads(RESULTS.read_text())
    print(f"\nkey press -> new frame in Chromium (target: median <= {TARGET_MEDIAN:.0f} ms, max <= {TARGET_MAX:.0f} ms)")
    worst = None
    for r in rows:
        ms = r["ms"]
        if not ms:
            print(f"  {r['notebook']:26s} {r['control'][:26]:26s} no change on any press")
            continue
        med, mx = statistics.median(ms), max(ms)
        print(f"  {r['notebook']:26s} {r['control'][:26]:26s} median {med:6.0f} ms ({med / TARGET_MEDIAN:4.2f}x target), "
              f"max {mx:6.0f} ms ({mx / TARGET_MAX:4.2f}x)")
        if worst is None or med > worst[0]:
            worst = (med, mx, r["notebook"], r["control"])
    if worst:
        print(f"worst median: {worst[0]:.0f} ms ({worst[2]}, {worst[3]}); "
              f"worst max overall: {max(max(r['ms']) for r in rows if r['ms']):.0f} ms")
    return proc.returncode


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
