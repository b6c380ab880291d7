"""Run every benchmark module and write BENCHMARKS.md.

Each ``benchmarks/bench_*.py`` exposes ``TITLE: str`` and ``run(quick: bool) -> str``, which measures
the project against a baseline IN THE SAME RUN and returns a Markdown section (tables of medians and
ratios). ``python -m benchmarks.run [--quick] [--only NAME]``.
"""

from __future__ import annotations

import argparse
import datetime
import importlib
import os
import platform
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def _existing_sections(path: Path) -> dict[str, str]:
    """Sections (title -> text) of an earlier BENCHMARKS.md, so ``--only`` replaces just its own."""
    if not path.exists():
        return {}
    sections: dict[str, str] = {}
    for chunk in path.read_text().split("\n## ")[1:]:
        title, _, text = chunk.partition("\n")
        sections[title.strip()] = text
    return sections


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--quick", action="store_true", help="fewer repetitions (smoke run)")
    parser.add_argument("--only", action="append", default=[], help="run only bench_NAME (repeatable)")
    parser.add_argument("--output", default=str(ROOT / "BENCHMARKS.md"))
    args = parser.parse_args()
    names = sorted(p.stem for p in (ROOT / "benchmarks").glob("bench_*.py"))
    if args.only:
        names = [n for n in names if n.removeprefix("bench_") in args.only or n in args.only]
    command = "make bench" + (f" BENCH_ARGS='{' '.join(sys.argv[1:])}'" if sys.argv[1:] else "")
    machine = (
        f"{platform.python_implementation()} {platform.python_version()}, {platform.machine()}, "
        f"{os.cpu_count()} CPUs"
    )
    output = Path(args.output)
    sections = _existing_sections(output) if args.only else {}
    for name in names:
        module = importlib.import_module(f"benchmarks.{name}")
        print(f"== {module.TITLE}", flush=True)
        started = time.monotonic()
        section = module.run(quick=args.quick)
        print(section, flush=True)
        sections[module.TITLE] = "\n".join(
            [
                f"_Produced by `{command}` on {datetime.date.today().isoformat()} ({machine}), "
                f"in {time.monotonic() - started:.0f} s._",
                "",
                section.strip(),
            ]
        )
    header = [
        "# Benchmarks",
        "",
        "Shared, noisy machines: figures are medians, and every figure is compared with a baseline "
        "measured in the same run. Each section names the command that produced it.",
        "",
    ]
    body = [f"## {title}\n\n{text.strip()}\n" for title, text in sections.items()]
    output.write_text("\n".join(header + body))
    print(f"wrote {args.output}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
