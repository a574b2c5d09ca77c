"""Every benchmark, one table: the figures the README quotes, measured on this machine.

    python benchmarks/run_all.py [--quick] [--device cuda] [--only dissection cache ...]

Runs each benchmark in its own process (``--device`` and ``--quick`` passed through), shows its output as it
goes, and collects the figures it prints on its ``FIGURES`` line into one Markdown table: benchmark, figure,
value, and the unit or what the value is relative to. The result cache is off in every benchmark (it would
serve a repeated call instead of computing it); ``bench_cache`` times it in a folder of its own. A benchmark
that cannot run here (Lucent not installed) says so under the table; one that fails is named there too, and
the command then exits with status 1.
"""

from __future__ import annotations

import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import common

HERE = Path(__file__).resolve().parent
OUT = Path(tempfile.gettempdir()) / "cnnvis-benchmarks"

# (name, script, extra arguments), in the order of the table
BENCHMARKS = [
    ("top_activations", "bench_top_activations.py", []),
    ("top_activations Lite2", "bench_top_activations.py", ["--model", "efficientnet_lite2", "--batch-size", "16"]),
    ("deconvnet", "bench_deconvnet.py", []),
    ("dissection", "bench_dissection.py", []),
    ("am", "bench_am.py", []),
    ("am_real", "bench_am_real.py", []),
    ("inversion_real", "bench_inversion_real.py", ["--out", str(OUT / "inversion_lite2.png")]),
    ("cache", "bench_cache.py", []),
    ("distributed", "bench_distributed.py", []),
]


def run(script: str, arguments: list[str]) -> tuple[dict | None, int]:
    """Run one benchmark, echoing its output; its figures (None if it printed none) and its exit status."""
    command = [sys.executable, "-W", "ignore", str(HERE / script), *arguments]
    print(f"\n$ python benchmarks/{script} {' '.join(arguments)}", flush=True)
    figures = None
    with subprocess.Popen(command, stdout=subprocess.PIPE, text=True, bufsize=1) as process:
        for line in process.stdout:
            if line.startswith(common.FIGURES_PREFIX):
                figures = json.loads(line[len(common.FIGURES_PREFIX):])
            else:
                print("  " + line, end="", flush=True)
    return figures, process.returncode


def formatted(value) -> str:
    if value is None:
        return "-"
    if isinstance(value, str):
        return value
    return f"{value:.0f}" if abs(value) >= 100 else f"{value:.3g}"


def table(rows: list[tuple[str, dict]]) -> str:
    def cells(*texts):
        return "| " + " | ".join(text.replace("|", "\\|") for text in texts) + " |"

    lines = [cells("benchmark", "figure", "value", "unit, or relative to"), "|---|---|---|---|"]
    lines += [cells(name, f["name"], formatted(f["value"]), f["unit"]) for name, f in rows]
    return "\n".join(lines)


def main() -> None:
    parser = common.make_parser(__doc__.splitlines()[0], "every benchmark at its smaller size")
    parser.add_argument("--only", nargs="+", default=None, choices=[name.split()[0] for name, _, _ in BENCHMARKS],
                        help="run only these benchmarks")
    args = parser.parse_args()
    OUT.mkdir(parents=True, exist_ok=True)
    info = common.machine(args.device)
    print("run_all | " + ", ".join(f"{key} {value}" for key, value in info.items())
          + f", result cache off{', quick' if args.quick else ''}", flush=True)
    rows, notes, failed, seconds = [], [], [], {}
    begin = time.perf_counter()
    for name, script, extra in BENCHMARKS:
        if args.only and name.split()[0] not in args.only:
            continue
        start = time.perf_counter()
        figures, status = run(script, ["--device", args.device, *(["--quick"] if args.quick else []), *extra])
        seconds[name] = time.perf_counter() - start
        if status != 0 or figures is None:
            failed.append(name)
            notes.append(f"{name}: FAILED (exit status {status}); its output is above")
            continue
        rows += [(name, f) for f in figures["figures"]]
        notes += figures["notes"]
    total = time.perf_counter() - begin
    print("\n" + table(rows) + "\n")
    for note in notes:
        print(f"- {note}")
    print("time per benchmark: " + ", ".join(f"{name} {s:.0f} s" for name, s in seconds.items())
          + f"; in all {total / 60:.1f} min")
    sys.exit(1 if failed else 0)


if __name__ == "__main__":
    main()
