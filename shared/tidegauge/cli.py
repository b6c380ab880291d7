"""The ``tidegauge`` command: ``serve``, ``collect``, ``metrics``, ``status``, ``demo``.

Each sub-command lives in its own module exposing ``add_arguments(parser)`` and ``run(args) -> int``;
they are imported only when chosen, so ``tidegauge metrics`` does not pay for aiohttp or boto3.
"""

from __future__ import annotations

import argparse
import importlib
import logging
import sys
from collections.abc import Sequence

COMMANDS: dict[str, tuple[str, str]] = {
    "serve": ("tidegauge.server.command", "run the aggregated metrics API server"),
    "collect": ("tidegauge.sources.command", "run the collectors outside Lambda (--once or --loop)"),
    "metrics": ("tidegauge.ops.metrics", "show metrics and series stored in Redis"),
    "status": ("tidegauge.ops.status", "show collector status and usage totals"),
    "demo": ("tidegauge.demo.command", "closed-loop autoscaling demo on embedded defaults"),
}


def main(argv: Sequence[str] | None = None) -> int:
    arguments = list(sys.argv[1:] if argv is None else argv)
    parser = argparse.ArgumentParser(prog="tidegauge", description="Cloud signals for the Kubernetes HPA.")
    parser.add_argument("--log-level", default="INFO", help="DEBUG, INFO, WARNING or ERROR (default INFO)")
    subparsers = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    chosen = next((a for a in arguments if a in COMMANDS), None)
    for name, (module_name, help_text) in COMMANDS.items():
        sub = subparsers.add_parser(name, help=help_text, description=help_text)
        if name == chosen:
            module = importlib.import_module(module_name)
            module.add_arguments(sub)
            sub.set_defaults(handler=module.run)
    args = parser.parse_args(arguments)
    log_format = "%(asctime)s %(levelname)s %(name)s: %(message)s"
    logging.basicConfig(level=args.log_level.upper(), format=log_format)
    result: int = args.handler(args)
    return result


if __name__ == "__main__":
    sys.exit(main())
