"""The ``tidegauge`` command: ``serve``, ``collect``, ``metrics``, ``status``, ``config``, ``explain``...

Installed twice: as ``tidegauge`` and as the kubectl plugin ``kubectl-tidegauge`` (so ``kubectl tidegauge
doctor`` works; put kubectl's flags, ``--kubeconfig``, ``--context``, ``-n``, after the sub-command).

Each sub-command lives in its own module exposing ``add_arguments(parser)`` and ``run(args) -> int``;
they are imported only when chosen, so ``tidegauge metrics`` does not pay for aiohttp or boto3.

The error contract of every sub-command is kept here, once: a known error (:mod:`tidegauge.errors`:
configuration, selector, store, collection, usage) prints one ``tidegauge <command>: <what failed>. Fix:
<what to do>`` message on stderr and exits 2 for a usage or configuration problem, 1 for a failure at run
time; the traceback is printed only with ``--log-level DEBUG``. Argument errors are argparse's (exit 2).
"""

from __future__ import annotations

import argparse
import importlib
import logging
import sys
import traceback
from collections.abc import Sequence
from types import ModuleType

from tidegauge import __version__
from tidegauge.errors import TidegaugeError, explain

COMMANDS: dict[str, tuple[str, str]] = {
    "serve": ("tidegauge.server.command", "run the aggregated metrics API server"),
    "collect": ("tidegauge.sources.collect", "run the collectors outside Lambda (--once or --loop)"),
    "metrics": ("tidegauge.ops.metrics", "show metrics and series stored in Redis"),
    "status": ("tidegauge.ops.status", "show collector status and usage totals"),
    "top": ("tidegauge.ops.top", "live table of every series and the collectors"),
    "dashboard": ("tidegauge.ops.dashboard", "serve the read-only ops page (localhost by default)"),
    "config": ("tidegauge.ops.config_check", "check a configuration without running anything"),
    "doctor": ("tidegauge.ops.doctor", "check the APIService chain, RBAC, the server and the HPAs"),
    "explain": ("tidegauge.ops.explain", "explain an HPA's replica count with the upstream algorithm"),
    "demo": ("tidegauge.demo.command", "closed-loop autoscaling demo on embedded defaults"),
}
LOG_LEVELS = ("DEBUG", "INFO", "WARNING", "ERROR")
EXIT_INTERRUPTED = 130


def build_parser(arguments: Sequence[str], prog: str = "tidegauge") -> argparse.ArgumentParser:
    """The parser, with the arguments of the chosen sub-command only (the others stay unimported)."""
    parser = argparse.ArgumentParser(prog=prog, description="Cloud signals for the Kubernetes HPA.")
    parser.add_argument("--version", action="version", version=f"tidegauge {__version__}")
    parser.add_argument(
        "--log-level",
        default="INFO",
        type=str.upper,
        choices=LOG_LEVELS,
        help="DEBUG (also prints tracebacks of known errors), INFO, WARNING or ERROR (default INFO)",
    )
    subparsers = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    chosen = next((a for a in arguments if a in COMMANDS), None)
    for name, (module_name, help_text) in COMMANDS.items():
        sub = subparsers.add_parser(name, help=help_text, description=help_text)
        if name == chosen:
            module = _command_module(parser, name, module_name)
            module.add_arguments(sub)
            sub.set_defaults(handler=module.run)
    return parser


def _command_module(parser: argparse.ArgumentParser, name: str, module_name: str) -> ModuleType:
    """The sub-command's module; a usage error (exit 2) when this installation leaves it out."""
    try:
        return importlib.import_module(module_name)
    except ModuleNotFoundError as error:
        if error.name is None or not module_name.startswith(error.name):
            raise  # a dependency is missing, not the command: the traceback names it
        parser.error(
            f"{name}: this installation has no {error.name} (the server image leaves the demo out). "
            "Fix: run it from a source checkout after `make venv`"
        )


def main(argv: Sequence[str] | None = None, prog: str = "tidegauge") -> int:
    arguments = list(sys.argv[1:] if argv is None else argv)
    args = build_parser(arguments, prog).parse_args(arguments)
    logging.basicConfig(level=args.log_level, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    try:
        result: int = args.handler(args)
    except TidegaugeError as error:
        if args.log_level == "DEBUG":
            traceback.print_exc()
        print(f"{prog} {args.command}: {explain(error)}", file=sys.stderr)
        return error.exit_code
    except KeyboardInterrupt:
        print(f"{prog} {args.command}: interrupted", file=sys.stderr)
        return EXIT_INTERRUPTED
    return result


def kubectl_plugin() -> int:
    """``kubectl-tidegauge``: kubectl runs it for ``kubectl tidegauge ARGS`` with ARGS as they were."""
    return main(sys.argv[1:], prog="kubectl tidegauge")


if __name__ == "__main__":
    sys.exit(main())
