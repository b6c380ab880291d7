"""Beside KEDA: what delegation adds to a request, and the gRPC external scaler's GetMetrics rate.

Delegation: a front server forwards a name it does not hold to a second real server (the delegate, which
authenticates the front's bearer token by TokenReview against the fake kube-apiserver, cached). Rows, in
the same run: the front answering its own metric, the delegate asked directly, and the front forwarding
to the delegate; the added latency is forwarded minus delegate-direct. Load comes from bench_server's
separate client process (4 keep-alive TLS connections).

gRPC: ``GetMetrics`` of the real scaler (real Redis, the provider's 1 s snapshot) against a baseline gRPC
handler on the same TLS credentials returning the same bytes; load from a separate process with a few
concurrent calls on one channel. ``make bench BENCH_ARGS='--only keda'`` runs this section alone.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from benchmarks.bench_server import (
    CONFIG,
    CONNECTIONS,
    _fetch,
    _load,
    _Loop,
    _median_of,
    loopback_settings,
    measure,
)

TITLE = "Beside KEDA: delegated requests and the gRPC external scaler"
EXTERNAL = "/apis/external.metrics.k8s.io/v1beta1/namespaces/default"
KEDA_METRIC = "s0-aws-sqs-orders"
SERIES = 1_000
GRPC_CONCURRENCY = 8
TRIGGER = {"metric": "bench_grpc", "labelSelector": "queue=q00007", "targetAverageValue": "5"}


def run(quick: bool) -> str:
    seconds, repeats = (1.5, 1) if quick else (4.0, 3)
    workdir = Path(tempfile.mkdtemp(prefix="tidegauge-bench-keda-"))
    delegation = _delegation(workdir, seconds, repeats)
    grpc_rows = _grpc(workdir, seconds, repeats)
    return delegation + "\n\n" + grpc_rows


# --- delegation ---------------------------------------------------------------------------------------


def _delegation(workdir: Path, seconds: float, repeats: int) -> str:
    from tests.support.kube_fake import FakeKubeApiServer
    from tests.support.pki import CertificateAuthority
    from tidegauge.config import parse_config
    from tidegauge.localredis import RedisServer
    from tidegauge.model import Sample
    from tidegauge.redis_connection import ConnectionSettings
    from tidegauge.server.runner import Server
    from tidegauge.server.settings import (
        AuthenticationFlags,
        DelegateSettings,
        ServerSettings,
    )
    from tidegauge.store import Store

    server_ca, proxy_ca = CertificateAuthority("server-ca"), CertificateAuthority("proxy-ca")
    cert, key = server_ca.issue_server().write(workdir, "serving")
    ca = workdir / "server-ca.crt"
    ca.write_bytes(server_ca.pem)
    (workdir / "proxy-ca.crt").write_bytes(proxy_ca.pem)
    client_cert, client_key = proxy_ca.issue("front-proxy-client").write(workdir, "proxy")
    token = workdir / "token"
    token.write_text("bench-token")
    kube = FakeKubeApiServer(workdir).start()
    kube.tokens["bench-token"] = {"username": "system:serviceaccount:tidegauge:tidegauge"}
    rows: list[str] = []
    loop = _Loop()
    try:
        with RedisServer() as redis:
            own_url, delegate_url = redis.url, redis.url.removesuffix("/0") + "/1"
            now = time.time()
            for url, name in ((own_url, "sqs_messages"), (delegate_url, KEDA_METRIC)):
                store = Store.connect(ConnectionSettings(url), history_length=0)
                store.write([Sample.of(name, {"scaledobject.keda.sh/name": "orders"}, 7, now)])
                store.close()

            authentication = AuthenticationFlags(
                requestheader_client_ca_file=str(workdir / "proxy-ca.crt"),
                authentication_kubeconfig=kube.write_kubeconfig(),
                skip_lookup=True,
            )

            def settings(**overrides: Any) -> ServerSettings:
                return loopback_settings(cert, key, authentication, **overrides)

            delegate = Server(settings(), parse_config(CONFIG, "<bench>", redis_url=delegate_url, environ={}))
            loop.call(delegate.start())
            forward = DelegateSettings(
                url=f"https://127.0.0.1:{delegate.secure_port}", ca_file=str(ca), token_file=str(token)
            )
            front = Server(
                settings(delegate=forward), parse_config(CONFIG, "<bench>", redis_url=own_url, environ={})
            )
            loop.call(front.start())
            keda_path = f"{EXTERNAL}/{KEDA_METRIC}?labelSelector=scaledobject.keda.sh%2Fname%3Dorders"
            targets = (
                ("tidegauge's own metric, from the front", front.secure_port, f"{EXTERNAL}/sqs_messages"),
                ("KEDA metric, delegate asked directly", delegate.secure_port, keda_path),
                ("KEDA metric, forwarded by the front", front.secure_port, keda_path),
            )
            for _label, port, path in targets:
                _fetch(port, path, str(ca), client_cert, client_key)  # warm: TokenReview cached, 200
            results: dict[str, list[dict[str, float]]] = {label: [] for label, _, _ in targets}
            for _ in range(repeats):
                for label, port, path in targets:
                    results[label].append(_load(port, path, str(ca), client_cert, client_key, seconds))
            loop.call(front.stop())
            loop.call(delegate.stop())
    finally:
        loop.close()
        kube.stop()
    medians = {label: _median_of(runs) for label, runs in results.items()}
    direct = medians["KEDA metric, delegate asked directly"]
    forwarded = medians["KEDA metric, forwarded by the front"]
    for label, m in medians.items():
        rows.append(
            f"| {label} | {m['rps']:,.0f} | {m['p50_ms']:.2f} | {m['p99_ms']:.2f} | "
            f"{m['rps'] / direct['rps']:.2f} |"
        )
    lines = [
        f"Delegation: {CONNECTIONS} keep-alive TLS connections from a separate client process, {seconds:g} s "
        f"per run, median of {repeats} run(s) per row; default settings (1 s response cache in both "
        "servers; forwarded requests are never cached by the front). Ratio = requests/s ÷ delegate-direct.",
        "",
        "| request | requests/s | p50 ms | p99 ms | ratio |",
        "| --- | ---: | ---: | ---: | ---: |",
        *rows,
        "",
        f"**Added by delegation: {forwarded['p50_ms'] - direct['p50_ms']:.2f} ms at p50, "
        f"{forwarded['p99_ms'] - direct['p99_ms']:.2f} ms at p99** (one proxied call on a pooled "
        "TLS connection; both servers share this machine's 2 CPUs with the client, so the forwarded row "
        "also pays the front's event loop).",
    ]
    return "\n".join(lines)


# --- gRPC ---------------------------------------------------------------------------------------------


def _grpc(workdir: Path, seconds: float, repeats: int) -> str:
    from tests.support.pki import CertificateAuthority
    from tidegauge.config import parse_config
    from tidegauge.localredis import RedisServer
    from tidegauge.model import Sample
    from tidegauge.redis_connection import ConnectionSettings
    from tidegauge.server.runner import Server
    from tidegauge.server.settings import (
        AuthenticationFlags,
        KedaScalerSettings,
    )
    from tidegauge.store import Store

    server_ca = CertificateAuthority("grpc-ca")
    cert, key = server_ca.issue_server().write(workdir, "grpc-serving")
    ca = workdir / "grpc-ca.crt"
    ca.write_bytes(server_ca.pem)
    loop = _Loop()
    try:
        with RedisServer() as redis:
            store = Store.connect(ConnectionSettings(redis.url), history_length=0)
            now = time.time()
            store.write(Sample.of("bench_grpc", {"queue": f"q{i:05d}"}, i, now) for i in range(SERIES))
            store.close()
            settings = loopback_settings(
                cert, key, AuthenticationFlags(skip_lookup=True), keda_scaler=KedaScalerSettings(port=0)
            )
            server = Server(settings, parse_config(CONFIG, "<bench>", redis_url=redis.url, environ={}))
            loop.call(server.start())
            reply = _grpc_call(server.keda_port, str(ca))
            baseline, baseline_port = loop.call(_grpc_baseline(reply, Path(cert), Path(key)))
            results: dict[str, list[dict[str, float]]] = {"baseline": [], "scaler": []}
            for _ in range(repeats):
                for target, port in (("baseline", baseline_port), ("scaler", server.keda_port)):
                    results[target].append(_grpc_load(port, str(ca), seconds))
            loop.call(baseline.stop(0))
            loop.call(server.stop())
    finally:
        loop.close()
    base = _median_of(results["baseline"])
    rows = []
    for target in ("baseline", "scaler"):
        m = _median_of(results[target])
        rows.append(
            f"| {target} | {m['rps']:,.0f} | {m['p50_ms']:.2f} | {m['p99_ms']:.2f} | "
            f"{m['rps'] / base['rps']:.2f} |"
        )
    scaler = _median_of(results["scaler"])
    lines = [
        f"gRPC `GetMetrics` over TLS: {GRPC_CONCURRENCY} concurrent calls on one channel from a separate "
        f"client process, {seconds:g} s per run, median of {repeats} run(s); the trigger selects one of "
        f"{SERIES:,} series (`{TRIGGER['labelSelector']}`). `baseline`: a gRPC handler on the same TLS "
        "credentials returning the same reply bytes. Ratio = calls/s ÷ baseline calls/s.",
        "",
        "| target | calls/s | p50 ms | p99 ms | ratio |",
        "| --- | ---: | ---: | ---: | ---: |",
        *rows,
        "",
        f"**GetMetrics: {scaler['rps']:,.0f} calls/s, p99 {scaler['p99_ms']:.2f} ms.** KEDA calls it once "
        "per ScaledObject trigger per polling interval (30 s by default).",
    ]
    return "\n".join(lines)


def _grpc_call(port: int, ca: str) -> bytes:
    import grpc

    from tidegauge.keda import messages

    credentials = grpc.ssl_channel_credentials(root_certificates=Path(ca).read_bytes())
    with grpc.secure_channel(f"127.0.0.1:{port}", credentials) as channel:
        call = channel.unary_unary(f"/{messages.SERVICE}/GetMetrics")
        request = messages.encode_metrics_request("orders", "default", TRIGGER, "s0-bench")
        reply: bytes = call(request, timeout=10)
    return reply


async def _grpc_baseline(reply: bytes, cert: Path, key: Path) -> tuple[Any, int]:
    import grpc
    from grpc import aio

    from tidegauge.keda import messages

    async def answer(_request: bytes, _context: Any) -> bytes:
        return reply

    server = aio.server()
    handler = grpc.method_handlers_generic_handler(
        messages.SERVICE, {"GetMetrics": grpc.unary_unary_rpc_method_handler(answer)}
    )
    server.add_generic_rpc_handlers((handler,))
    credentials = grpc.ssl_server_credentials([(key.read_bytes(), cert.read_bytes())])
    port = server.add_secure_port("127.0.0.1:0", credentials)
    await server.start()
    return server, port


def _grpc_load(port: int, ca: str, seconds: float) -> dict[str, float]:
    command = [sys.executable, "-m", "benchmarks.bench_keda", "--grpc-load", str(port), ca, str(seconds)]
    result = subprocess.run(command, capture_output=True, text=True, timeout=seconds + 60, check=True)
    figures: dict[str, float] = json.loads(result.stdout.strip().splitlines()[-1])
    return figures


async def _generate_grpc(port: int, ca: str, seconds: float) -> None:
    import grpc
    from grpc import aio

    from tidegauge.keda import messages

    request = messages.encode_metrics_request("orders", "default", TRIGGER, "s0-bench")
    credentials = grpc.ssl_channel_credentials(root_certificates=Path(ca).read_bytes())
    async with aio.secure_channel(f"127.0.0.1:{port}", credentials) as channel:
        call = channel.unary_unary(f"/{messages.SERVICE}/GetMetrics")

        async def one() -> None:
            await call(request, timeout=10)

        figures = await measure(one, seconds, GRPC_CONCURRENCY)
    print(json.dumps(figures))


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--grpc-load", nargs=3, metavar=("PORT", "CA", "SECONDS"), required=True)
    args = parser.parse_args()
    port, ca, seconds = args.grpc_load
    asyncio.run(_generate_grpc(int(port), ca, float(seconds)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
