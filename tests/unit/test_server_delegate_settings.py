"""`tidegauge serve --delegate-external-metrics` flags (or their environment) become DelegateSettings."""

from __future__ import annotations

import argparse
import asyncio

import pytest

from tidegauge import environment
from tidegauge.server.command import add_arguments, settings_from
from tidegauge.server.delegate import HeldNames
from tidegauge.server.runner import SettingsError
from tidegauge.server.settings import SERVICE_ACCOUNT_TOKEN_FILE, DelegateSettings
from tidegauge.store import StoreUnavailable

KEDA = "https://keda-operator-metrics-apiserver.keda.svc:443"


def parse(*argv: str) -> argparse.Namespace:
    parser = argparse.ArgumentParser()
    add_arguments(parser)
    return parser.parse_args(["--tls-cert-file", "c", "--tls-private-key-file", "k", *argv])


def test_no_delegation_unless_a_url_is_given() -> None:
    assert settings_from(parse()).delegate is None


def test_delegation_flags_become_settings_with_the_service_account_token_by_default() -> None:
    args = parse("--delegate-external-metrics", KEDA, "--delegate-ca-file", "/ca/keda.crt")
    assert settings_from(args).delegate == DelegateSettings(
        url=KEDA, ca_file="/ca/keda.crt", token_file=SERVICE_ACCOUNT_TOKEN_FILE, timeout_seconds=1.0
    )


def test_delegation_is_settable_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    # GIVEN the four variables set (as a Deployment's env does) WHEN no flag is given THEN they are used
    monkeypatch.setenv(environment.DELEGATE_EXTERNAL_METRICS, KEDA)
    monkeypatch.setenv(environment.DELEGATE_CA_FILE, "/ca/keda.crt")
    monkeypatch.setenv(environment.DELEGATE_TOKEN_FILE, "/tokens/keda")
    monkeypatch.setenv(environment.DELEGATE_TIMEOUT, "0.75")
    delegate = settings_from(parse()).delegate
    assert delegate == DelegateSettings(
        url=KEDA, ca_file="/ca/keda.crt", token_file="/tokens/keda", timeout_seconds=0.75
    )
    # AND a flag beats its variable
    assert settings_from(parse("--delegate-timeout", "0.5")).delegate == DelegateSettings(
        url=KEDA, ca_file="/ca/keda.crt", token_file="/tokens/keda", timeout_seconds=0.5
    )


def test_plain_http_delegate_is_refused_naming_the_flag() -> None:
    with pytest.raises(
        SettingsError, match=r"--delegate-external-metrics 'http://keda:80': give an https://"
    ):
        settings_from(parse("--delegate-external-metrics", "http://keda:80"))


@pytest.mark.parametrize("timeout", ["0", "-1", "soon", "2"])
def test_delegate_timeout_must_be_positive_and_below_the_request_timeout(timeout: str) -> None:
    with pytest.raises(SettingsError, match="--delegate-timeout"):
        settings_from(parse("--delegate-external-metrics", KEDA, "--delegate-timeout", timeout))


def test_failed_refresh_keeps_the_held_names_it_had() -> None:
    answers: list[set[str] | Exception] = [{"queue_age"}, StoreUnavailable("Redis is down")]

    async def list_stored() -> set[str]:
        answer = answers.pop(0)
        if isinstance(answer, Exception):
            raise answer
        return answer

    async def scenario() -> None:
        held = HeldNames(["sqs_messages"], list_stored)
        # GIVEN the configured names only WHEN the store lists one more THEN both are held
        assert "queue_age" not in held
        await held.refresh()
        assert held.names == {"sqs_messages", "queue_age"}
        # WHEN the store then fails THEN the last set stays (own metrics never become delegated)
        with pytest.raises(StoreUnavailable):
            await held.refresh()
        assert held.names == {"sqs_messages", "queue_age"}

    asyncio.run(scenario())
