"""``tidegauge config check FILE | --from-ssm NAME``: validate a configuration without running anything.

It parses and checks the document exactly as the collectors and the server do (every issue at once, each
with its field and the fix), then prints what it configures. Nothing is collected and nothing is written;
``--from-ssm`` only reads the parameter. Exit status: 0 valid, 2 invalid, 1 the parameter is unreadable.
"""

from __future__ import annotations

import argparse
import os

from tidegauge import environment
from tidegauge.config import Config, load_config, parse_config
from tidegauge.errors import UsageError


def add_arguments(parser: argparse.ArgumentParser) -> None:
    actions = parser.add_subparsers(dest="action", required=True, metavar="ACTION")
    check = actions.add_parser("check", help="validate a configuration file or SSM parameter")
    where = check.add_mutually_exclusive_group()
    where.add_argument(
        "file", nargs="?", help=f"a YAML or JSON config file (default: ${environment.CONFIG_FILE})"
    )
    where.add_argument("--from-ssm", metavar="NAME", help="the SSM parameter the collectors read it from")
    check.add_argument(
        "--endpoint-url", metavar="URL", help="AWS endpoint for --from-ssm (e.g. a moto server)"
    )


def run(args: argparse.Namespace) -> int:
    config = _load(args)
    print(summary(config))
    return 0


def _load(args: argparse.Namespace) -> Config:
    if args.from_ssm:
        from tidegauge.sources.aws import ClientFactory, read_parameter  # boto3 only for --from-ssm

        text = read_parameter(ClientFactory(endpoint_url=args.endpoint_url), args.from_ssm)
        return parse_config(text, origin=f"ssm:{args.from_ssm}")
    path = args.file or os.environ.get(environment.CONFIG_FILE)
    if not path:
        raise UsageError(
            f"name a config: tidegauge config check FILE, --from-ssm NAME or ${environment.CONFIG_FILE}"
        )
    return load_config(path)


def summary(config: Config) -> str:
    """What a valid config sets up, in a few lines."""
    redis = config.redis
    cluster = {None: "detected at start", True: "yes", False: "no"}[redis.cluster]
    lines = [
        f"valid: {len(config.sources)} sources, {len(config.metric_names())} metrics",
        f"redis: {redis.redacted_url} (cluster: {cluster})",
    ]
    lines += [f"source {source.name}: {source.kind}" for source in config.sources]
    for metric in config.metric_names():
        if metric in config.derived:
            lines.append(f"metric {metric}: derived = {config.derived[metric].expression}")
            continue
        policy = config.metric_policy(metric)
        fallback = " with a fallback" if policy.fallback is not None else ""
        lines.append(f"metric {metric}: max age {policy.max_age_seconds:g} s{fallback}")
    if config.exposure is not None:
        lines.append(f"exposure: {len(config.exposure)} rules")
    for rule in config.objects:
        namespace = f"{rule.namespace}/" if rule.namespace is not None else ""
        lines.append(f"object {rule.resource.resource} {namespace}{rule.name}: series of {rule.metric}")
    return "\n".join(lines)
