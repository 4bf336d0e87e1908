"""Run envspec's benchmarks: ``python -m benchmarks [--quick] [--repeat N] [--json PATH]``, or
compare an older install with this one: ``python -m benchmarks --compare OLD_BIN [--pairs N]``
(see :mod:`benchmarks.compare`).

Every scenario runs the installed ``envspec`` command in fresh processes and reports the median
wall time and the peak resident memory (from ``wait4``) over the repetitions, for the bundled
example and for synthetic specs of 10, 100 and 1,000 services x 50 variables x 3 environments.

- "cold": render into an empty folder. The previous run's output is moved aside, not deleted,
  and deleted only at the end: removing thousands of files just before a run slows the next
  thousands of file creations on this kind of disk, which would bill one run's clean-up to the
  next.
- "first": the same with ``ENVSPEC_NO_CACHE=1``, as on a machine that never ran envspec: no
  compiled templates, no parsed spec files.
- "edit": one value of the last environment changed, then a render into an up-to-date folder.
- "warm": a render of an up-to-date folder; "check": ``render --check`` of one.

envspec's modules are compiled to bytecode first, as installing a wheel does. These are
measurements, not tests: nothing fails on a time, the targets are shown beside them. Each
time is also shown as a multiple of the "import floor" measured in the same run (``x floor``):
the example's targets are such multiples, so they mean the same on a slow day as on a fast one.
"""

from __future__ import annotations

import argparse
import compileall
import json
import os
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path

from benchmarks.compare import compare

REPO = Path(__file__).resolve().parents[1]
TARGETS_SECONDS = {
    "--version": 0.060,
    "--help": 0.060,
    "1000 render cold": 5.0,
    "1000 render first": 5.0,
    "1000 render warm": 5.0,
    "1000 check warm": 3.0,
}
IMPORT_FLOOR = (
    "import click, jinja2, yaml\n"
    "from pydantic import BaseModel\n"
    "class Model(BaseModel):\n"
    "    field: int\n"
    "Model(field=1)\n"
)
"""What any command that reads a spec must do before envspec's own code runs: import the
libraries it is built on and build a first pydantic model. Measured beside the example's
scenarios so that their targets can be read against it on the machine of the day."""
TARGETS_FLOOR_RATIO = {"example validate": 1.3, "example render cold": 1.5}
"""Targets of the example's commands, as multiples of the import floor of the same run: what
envspec adds on top of its libraries, whatever the machine's speed that day."""
TARGET_RSS_MB = {"1000 render cold": 400, "1000 render first": 400, "1000 render warm": 400}


@dataclass
class Measurement:
    scenario: str
    median_seconds: float
    peak_rss_mb: float
    runs: int
    target_seconds: float | None
    floor_ratio: float | None = None
    target_floor_ratio: float | None = None

    def met(self) -> bool | None:
        """Whether the scenario meets its target (None: it has none)."""
        if self.target_floor_ratio is not None and self.floor_ratio is not None:
            return self.floor_ratio <= self.target_floor_ratio
        if self.target_seconds is not None:
            return self.median_seconds <= self.target_seconds
        return None


def envspec_binary() -> str:
    found = shutil.which("envspec", path=str(Path(sys.executable).parent)) or shutil.which(
        "envspec"
    )
    if found is None:
        raise SystemExit("envspec is not installed: pip install -e .")
    return found


def run_once(
    command: list[str], prepare: Callable[[], None] | None, env: dict[str, str] | None = None
) -> tuple[float, float]:
    if prepare is not None:
        prepare()
    started = time.perf_counter()
    process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, env=env)
    _, status, usage = os.wait4(process.pid, 0)
    elapsed = time.perf_counter() - started
    process.returncode = os.waitstatus_to_exitcode(status)
    if process.returncode not in (0,):
        error = process.stderr.read().decode() if process.stderr else ""
        raise SystemExit(f"{' '.join(command)} failed ({process.returncode}):\n{error[:2000]}")
    return elapsed, usage.ru_maxrss / 1024


def measure(
    scenario: str,
    command: list[str],
    repeat: int,
    prepare: Callable[[], None] | None = None,
    env: dict[str, str] | None = None,
) -> Measurement:
    runs = [run_once(command, prepare, env) for _ in range(repeat)]
    return Measurement(
        scenario,
        round(statistics.median(t for t, _ in runs), 4),
        round(max(m for _, m in runs), 1),
        repeat,
        TARGETS_SECONDS.get(scenario),
    )


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m benchmarks", description=__doc__)
    parser.add_argument("--repeat", type=int, default=7, help="runs per scenario (default 7)")
    parser.add_argument("--quick", action="store_true", help="skip the 1,000-service size")
    parser.add_argument(
        "--json", type=Path, default=REPO / "benchmarks" / "results" / "latest.json"
    )
    parser.add_argument(
        "--scratch",
        type=Path,
        default=REPO / "benchmarks" / "results",
        help="where specs and outputs are written (default: benchmarks/results/, inside the "
        "project as a build/ folder is; a busy /tmp can make creating files several times slower)",
    )
    parser.add_argument(
        "--compare",
        metavar="OLD_BIN",
        help="alternate an older install's envspec command with this one and report CPU times "
        "and their ratios (benchmarks/compare.py)",
    )
    parser.add_argument("--pairs", type=int, default=5, help="with --compare: runs of each")
    options = parser.parse_args()
    binary = envspec_binary()
    options.scratch.mkdir(parents=True, exist_ok=True)
    if options.compare:
        with tempfile.TemporaryDirectory(prefix="envspec-compare-", dir=options.scratch) as work:
            compare(options.compare, binary, Path(work), options.pairs, options.quick)
        return
    compileall.compile_dir(REPO / "envspec", quiet=1)
    with tempfile.TemporaryDirectory(prefix="envspec-bench-", dir=options.scratch) as folder:
        sizes = (10, 100) if options.quick else (10, 100, 1000)
        results = _scenarios(binary, Path(folder), sizes, options.repeat)
    _against_floor(results)
    growth = _growth(results)
    _print_table(results, growth)
    options.json.parent.mkdir(parents=True, exist_ok=True)
    payload = {
        "machine": {
            "python": platform.python_version(),
            "cpus": os.cpu_count(),
            "system": platform.platform(),
        },
        "results": [asdict(m) for m in results],
        "growth": growth,
        "rss_targets_mb": TARGET_RSS_MB,
    }
    options.json.write_text(json.dumps(payload, indent=2) + "\n")
    print(f"wrote {options.json}")


def _scenarios(binary: str, work: Path, sizes: tuple[int, ...], repeat: int) -> list[Measurement]:
    out = work / "out"
    moved = iter(range(1_000_000))
    uncached = {**os.environ, "ENVSPEC_NO_CACHE": "1"}

    def fresh() -> None:
        if out.exists():
            out.rename(work / f"previous-{next(moved)}")

    results = [
        measure("--version", [binary, "--version"], repeat),
        measure("--help", [binary, "--help"], repeat),
        measure("import floor", [sys.executable, "-c", IMPORT_FLOOR], repeat),
        measure("example validate", [binary, "validate", "--spec", str(REPO)], repeat),
    ]
    render = [binary, "render", "--all", "--spec", str(REPO), "--out", str(out)]
    results += [
        measure("example render cold", render, repeat, fresh),
        measure("example render first", render, repeat, fresh, uncached),
        measure("example render warm", render, repeat),
        measure("example check warm", [*render, "--check"], repeat),
    ]
    for size in sizes:
        spec = _synthetic(work / f"spec-{size}", size)
        runs = max(3, (repeat + 3) // 2) if size == 1000 else repeat
        render = [binary, "render", "--all", "--spec", str(spec), "--out", str(out)]
        results += [
            measure(f"{size} validate", [binary, "validate", "--spec", str(spec)], runs),
            measure(f"{size} render cold", render, runs, fresh),
            measure(f"{size} render first", render, runs, fresh, uncached),
            measure(f"{size} render warm", render, runs),
            measure(f"{size} render edit", render, runs, _editing(spec)),
            measure(f"{size} check warm", [*render, "--check"], runs),
        ]
    return results


def _synthetic(root: Path, services: int) -> Path:
    """A synthetic spec, written by another process: ``ru_maxrss`` carries a process's peak
    across fork and exec, so a runner grown by building a large spec would report its own memory
    as every command's."""
    subprocess.run(
        [sys.executable, "-m", "benchmarks.synthetic", str(root), str(services), "50", "3"],
        cwd=REPO,
        check=True,
    )
    return root


def _against_floor(results: list[Measurement]) -> None:
    """Each scenario's time as a multiple of the import floor measured in the same run."""
    floor = next(m.median_seconds for m in results if m.scenario == "import floor")
    for m in results:
        m.floor_ratio = round(m.median_seconds / floor, 2)
        m.target_floor_ratio = TARGETS_FLOOR_RATIO.get(m.scenario)


def _growth(results: list[Measurement]) -> dict[str, float]:
    growth = {}
    for kind in ("validate", "render cold", "render first", "render edit", "check warm"):
        times = {
            m.scenario.split()[0]: m.median_seconds for m in results if m.scenario.endswith(kind)
        }
        if "100" in times and "10" in times:
            growth[f"{kind} 100/10"] = round(times["100"] / times["10"], 2)
        if "1000" in times and "100" in times:
            growth[f"{kind} 1000/100"] = round(times["1000"] / times["100"], 2)
    return growth


def _print_table(results: list[Measurement], growth: dict[str, float]) -> None:
    print(f"{'scenario':<24}{'median s':>10}{'x floor':>9}{'peak MB':>10}{'target':>10}")
    for m in results:
        if m.target_floor_ratio is not None:
            target = f"{m.target_floor_ratio:.2f}x"
        elif m.target_seconds is not None:
            target = f"{m.target_seconds:.3f}s"
        else:
            target = ""
        met = m.met()
        flag = "" if met is None else ("  ok" if met else "  MISSED")
        print(
            f"{m.scenario:<24}{m.median_seconds:>10.3f}{m.floor_ratio or 0:>9.2f}"
            f"{m.peak_rss_mb:>10.1f}{target:>10}{flag}"
        )
    print("growth (time ratio between sizes):", json.dumps(growth))


def _editing(spec: Path) -> Callable[[], None]:
    """Before each run, change one value of the last environment (a new value every time)."""
    overlay = sorted((spec / "environments").glob("*.yaml"))[-1]
    original = overlay.read_text(encoding="utf-8")
    runs = iter(range(1_000_000))

    def edit() -> None:
        overlay.write_text(
            original.replace(" override 0\n", f" override 0 edit {next(runs)}\n", 1),
            encoding="utf-8",
        )

    return edit


if __name__ == "__main__":
    main()
