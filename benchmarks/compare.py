"""Old against new, in the same minutes: ``python -m benchmarks --compare OLD_BIN [--pairs N]``.

Runs the same scenarios with an older install's ``envspec`` (``OLD_BIN``) and with this one,
alternating old and new run by run (the order flips every pair), and reports for each scenario
the median CPU time (user + system of the command and of every worker it forked, from
``wait4``) of each, and the median of the pairs' ratios (new / old). CPU time, not wall time: on
a machine that other work shares, waiting for a core inflates wall time by whatever else ran
then, CPU time much less. Every scenario is run once by each install before it is measured, so
both have their caches (compiled templates, parsed spec files) filled. Each install keeps its own
cache folder (``XDG_CACHE_HOME``) and its own compiled bytecode (``PYTHONPYCACHEPREFIX``), so
neither reads what the other wrote.

The example is the bundled one of the older install's checkout (``OLD_BIN``'s ``../../``, as for
an editable install in a ``.venv`` there; else this repository's), which both can read, copied
without its ``templates/`` folder (a copy of the built-in templates, which would make every
template an override), so that both installs render the same spec with their own built-in
templates. The 1,000-service spec is :mod:`benchmarks.synthetic`'s.
"""

from __future__ import annotations

import itertools
import os
import shutil
import statistics
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
_MOVED = itertools.count()
Command = tuple[list[str], Path | None]
"""The arguments after the binary, and a folder to move aside before each run (a cold render)."""


def compare(old_binary: str, new_binary: str, work: Path, pairs: int, quick: bool) -> None:
    checkout = Path(old_binary).absolute().parents[2]
    source = checkout if (checkout / "envspec.yaml").is_file() else REPO
    example = work / "example"
    example.mkdir()
    shutil.copy(source / "envspec.yaml", example / "envspec.yaml")
    shutil.copytree(source / "environments", example / "environments")
    scenarios: list[tuple[str, Callable[[str], Command]]] = [
        ("example validate", lambda tag: (["validate", "--spec", str(example)], None)),
        ("example render cold", lambda tag: _cold(example, work / f"cold-{tag}")),
        ("example render warm", lambda tag: (_render(example, work / f"warm-{tag}"), None)),
    ]
    if not quick:
        big = work / "spec-1000"
        subprocess.run(
            [sys.executable, "-m", "benchmarks.synthetic", str(big), "1000", "50", "3"],
            cwd=REPO,
            check=True,
        )
        scenarios += [
            ("1000 validate", lambda tag: (["validate", "--spec", str(big)], None)),
            ("1000 render cold", lambda tag: _cold(big, work / f"cold-{tag}")),
            ("1000 parity", lambda tag: (["parity", "--spec", str(big)], None)),
            ("1000 diff", lambda tag: (["diff", "stage-1", "production", f"--spec={big}"], None)),
        ]
    installs = {"old": old_binary, "new": new_binary}
    print(f"{'scenario':<22}{'old cpu s':>11}{'new cpu s':>11}{'new/old':>9}")
    for name, command in scenarios:
        times: dict[str, list[float]] = {"old": [], "new": []}
        for run in range(pairs + 1):
            order = ("old", "new") if run % 2 == 0 else ("new", "old")
            for tag in order:
                arguments, fresh = command(tag)
                spent = _cpu_time([installs[tag], *arguments], fresh, work, tag)
                if run > 0:
                    times[tag].append(spent)
        pairs_ratio = zip(times["old"], times["new"], strict=True)
        ratio = statistics.median(new / old for old, new in pairs_ratio)
        print(
            f"{name:<22}{statistics.median(times['old']):>11.3f}"
            f"{statistics.median(times['new']):>11.3f}{ratio:>9.3f}",
            flush=True,
        )


def _render(spec: Path, out: Path) -> list[str]:
    return ["render", "--all", "--spec", str(spec), "--out", str(out)]


def _cold(spec: Path, out: Path) -> Command:
    return _render(spec, out), out


def _cpu_time(command: list[str], fresh: Path | None, work: Path, tag: str) -> float:
    """User + system time of one run of ``command`` and of the children it waited for."""
    if fresh is not None and fresh.exists():
        fresh.rename(work / f"previous-{tag}-{next(_MOVED)}")
    environment = {
        **os.environ,
        "XDG_CACHE_HOME": str(work / f"cache-{tag}"),
        "PYTHONPYCACHEPREFIX": str(work / f"bytecode-{tag}"),
    }
    environment.pop("PYTHONDONTWRITEBYTECODE", None)
    process = subprocess.Popen(
        command, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, env=environment
    )
    _, status, usage = os.wait4(process.pid, 0)
    if os.waitstatus_to_exitcode(status) not in (0, 1):  # parity and diff may find differences
        error = process.stderr.read().decode() if process.stderr else ""
        raise SystemExit(f"{' '.join(command)} failed:\n{error[:2000]}")
    return usage.ru_utime + usage.ru_stime
