"""`tidegauge serve` flags become settings; settings that cannot work fail fast with the fix."""

from __future__ import annotations

import argparse
import asyncio
from pathlib import Path

import pytest

from tests.support.server_harness import Pki, server_config, settings_for
from tidegauge.cli import main
from tidegauge.server.command import add_arguments, settings_from
from tidegauge.server.runner import Server, SettingsError
from tidegauge.server.settings import AuthorizationMode, ConnectionLimits


def parse(*argv: str) -> argparse.Namespace:
    parser = argparse.ArgumentParser()
    add_arguments(parser)
    return parser.parse_args(["--tls-cert-file", "c", "--tls-private-key-file", "k", *argv])


def test_defaults_match_k8s_apiserver_conventions() -> None:
    settings = settings_from(parse())
    assert (settings.bind_address, settings.secure_port, settings.metrics_port) == ("0.0.0.0", 6443, 9090)
    assert settings.authorization_mode is AuthorizationMode.WEBHOOK
    assert settings.authentication.requestheader_allowed_names is None


def test_list_flags_split_on_commas_and_repeat() -> None:
    args = parse(
        "--requestheader-allowed-names", "a,b",
        "--requestheader-allowed-names", "c",
        "--requestheader-group-headers", "X-G",
        "--authorization-mode", "AlwaysAllowAuthenticated",
        "--metrics-port", "0",
    )  # fmt: skip
    settings = settings_from(args)
    assert settings.authentication.requestheader_allowed_names == ("a", "b", "c")
    assert settings.authentication.requestheader_group_headers == ("X-G",)
    assert settings.authorization_mode is AuthorizationMode.ALWAYS_ALLOW_AUTHENTICATED
    assert settings.metrics_port is None


def test_webhook_mode_without_a_kubeconfig_outside_a_cluster_fails_fast(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("KUBERNETES_SERVICE_HOST", raising=False)
    settings = settings_for(Pki(tmp_path), authorization_mode=AuthorizationMode.WEBHOOK)
    server = Server(settings, server_config("redis://127.0.0.1:1/0"))
    with pytest.raises(SettingsError, match="AlwaysAllowAuthenticated"):
        asyncio.run(server.start())


def test_bound_flags_become_connection_limits() -> None:
    argv = [
        "--max-connections", "50", "--header-read-timeout", "2.5", "--idle-timeout", "30",
        "--max-header-bytes", "32768", "--max-header-line-bytes", "8192", "--max-headers", "64",
        "--shutdown-delay-duration", "5", "--response-cache-bytes", "1048576",
    ]  # fmt: skip
    settings = settings_from(parse(*argv))
    assert settings.connections == ConnectionLimits(
        max_connections=50,
        header_read_timeout_seconds=2.5,
        idle_timeout_seconds=30,
        max_header_bytes=32768,
        max_header_line_bytes=8192,
        max_headers=64,
    )
    assert (settings.shutdown_delay_seconds, settings.response_cache_bytes) == (5, 1048576)
    assert settings_from(parse()).connections == ConnectionLimits()


@pytest.mark.parametrize("flag", ["--max-connections", "--header-read-timeout", "--max-header-bytes"])
def test_a_bound_that_is_not_positive_fails_naming_its_flag(flag: str) -> None:
    with pytest.raises(SettingsError, match=f"{flag} must be a positive number"):
        settings_from(parse(flag, "0"))


SERVE_LOCALLY = [
    "serve",
    "--authorization-mode",
    "AlwaysAllowAuthenticated",
    "--authentication-skip-lookup",
    "--bind-address",
    "127.0.0.1",
    "--secure-port",
    "0",
]


def test_serve_with_an_unreadable_certificate_fails_on_one_line_with_exit_1(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    missing = str(tmp_path / "missing.crt")
    code = main([*SERVE_LOCALLY, "--tls-cert-file", missing, "--tls-private-key-file", missing])
    assert code == 1
    (line,) = capsys.readouterr().err.strip().splitlines()
    assert line.startswith("tidegauge serve: ")
    assert "missing.crt" in line
    assert "Fix: check the --tls-cert-file" in line


def test_serve_with_an_invalid_config_is_a_usage_error(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    config = tmp_path / "config.yaml"
    config.write_text("version: 9\n")
    missing = str(tmp_path / "missing.crt")
    code = main(
        [
            *SERVE_LOCALLY,
            "--tls-cert-file",
            missing,
            "--tls-private-key-file",
            missing,
            "--config",
            str(config),
        ]
    )
    assert code == 2
    assert "version" in capsys.readouterr().err
