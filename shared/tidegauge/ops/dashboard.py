"""``tidegauge dashboard``: a small read-only ops page, on localhost by default.

``/`` is one HTML page (package data, inline CSS and JS: no build step, no CDN, works offline) that
polls ``/state.json`` and redraws without a reload: metrics, series with sparklines of their history
streams, ages and staleness, collector runs and errors, AWS API calls with the monthly cost estimate,
and, with ``--cluster``, the HPAs using each metric. Every request only reads Redis (and the cluster).
"""

from __future__ import annotations

import argparse
import asyncio
import functools
import importlib.resources
import logging
from collections.abc import Mapping, Sequence
from typing import Any

from aiohttp import web

from tidegauge.ops.cluster import Cluster, ClusterError, ClusterOptions, add_cluster_arguments, connect
from tidegauge.ops.common import Target, add_redis_arguments, open_target
from tidegauge.ops.dashboard_state import state
from tidegauge.ops.hpa_reading import metric_readings

logger = logging.getLogger(__name__)
PAGE = importlib.resources.files("tidegauge.ops").joinpath("page.html")
_STATE = web.AppKey("state", object)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    add_redis_arguments(parser)
    parser.add_argument(
        "--bind", default="127.0.0.1", help="address to listen on (default 127.0.0.1: this machine)"
    )
    parser.add_argument("--port", type=int, default=8080, help="port (default 8080; 0 picks a free one)")
    parser.add_argument(
        "--cluster",
        action="store_true",
        help="also show the HPAs using each metric (reads the kubeconfig's cluster)",
    )
    add_cluster_arguments(parser)


def run(args: argparse.Namespace) -> int:
    target = open_target(args)
    cluster = connect(ClusterOptions.from_args(args)) if args.cluster else None
    app = build_app(target, cluster)
    print(f"tidegauge dashboard on http://{args.bind}:{args.port}/ (Ctrl-C stops it)", flush=True)
    try:
        web.run_app(app, host=args.bind, port=args.port, print=None, access_log=None)
    finally:
        target.store.close()
    return 0


def build_app(target: Target, cluster: Cluster | None = None) -> web.Application:
    """The page and its JSON; the store is read in a worker thread so requests never block the loop."""

    async def page(request: web.Request) -> web.Response:
        return web.Response(text=PAGE.read_text(encoding="utf-8"), content_type="text/html")

    async def state_json(request: web.Request) -> web.Response:
        loop = asyncio.get_running_loop()
        hpas = await loop.run_in_executor(None, hpas_by_metric, cluster) if cluster is not None else None
        document = await loop.run_in_executor(None, functools.partial(state, target, hpas))
        return web.json_response(document, headers={"Cache-Control": "no-store"})

    app = web.Application()
    app.router.add_get("/", page)
    app.router.add_get("/state.json", state_json)
    return app


def hpas_by_metric(cluster: Cluster) -> Mapping[str, Sequence[str]]:
    """External metric name -> the ``namespace/name`` of every HPA using it (empty when unreadable)."""
    try:
        items: list[dict[str, Any]] = (
            cluster.get("/apis/autoscaling/v2/horizontalpodautoscalers").get("items") or []
        )
    except ClusterError as error:
        logger.warning("cannot list HPAs: %s", error)
        return {}
    using: dict[str, list[str]] = {}
    for hpa in items:
        metadata = hpa.get("metadata", {})
        for reading in metric_readings(hpa, {}):
            if reading.source == "External":
                using.setdefault(reading.name, []).append(
                    f"{metadata.get('namespace')}/{metadata.get('name')}"
                )
    return using
