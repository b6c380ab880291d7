"""Trigger metadata of a ScaledObject, and the --keda-scaler-* flags of `tidegauge serve`."""

from __future__ import annotations

import argparse

import pytest

from tidegauge import environment
from tidegauge.keda.trigger import TriggerError, parse_trigger
from tidegauge.selectors import parse_selector
from tidegauge.server.command import add_arguments, settings_from
from tidegauge.server.runner import SettingsError
from tidegauge.server.settings import KedaScalerSettings


def parse(*argv: str) -> argparse.Namespace:
    parser = argparse.ArgumentParser()
    add_arguments(parser)
    return parser.parse_args(["--tls-cert-file", "c", "--tls-private-key-file", "k", *argv])


def test_target_average_value_is_keda_default_average_value_metric() -> None:
    trigger = parse_trigger(
        "shop", {"metric": "sqs_messages", "labelSelector": "queue=orders", "targetAverageValue": "5"}
    )
    assert (trigger.metric, trigger.target, trigger.average) == ("sqs_messages", 5, True)
    assert trigger.activation == 0
    assert trigger.selector == parse_selector("queue=orders")


def test_target_value_and_activation_value_are_read() -> None:
    trigger = parse_trigger("shop", {"metric": "db_load", "targetValue": "0.8", "activationValue": "0.1"})
    assert (trigger.target, trigger.average, trigger.activation) == (0.8, False, 0.1)
    assert trigger.selector == parse_selector(None)


@pytest.mark.parametrize(
    ("namespace", "metadata", "message"),
    [
        ("shop", {"metric": "q", "targetValue": "nan"}, "targetValue: 'nan' is not a number above 0"),
        ("shop", {"metric": "q", "targetValue": "1", "activationValue": "-2"}, "activationValue"),
        ("shop", {"metric": "q/x", "targetValue": "1"}, "metric: 'q/x' is not a metric name"),
        ("Shop_", {"metric": "q", "targetValue": "1"}, "namespace 'Shop_' is not a DNS label"),
    ],
)
def test_unusable_metadata_names_the_field(namespace: str, metadata: dict[str, str], message: str) -> None:
    with pytest.raises(TriggerError, match=message):
        parse_trigger(namespace, metadata)


def test_scaler_port_flag_or_environment_enables_the_scaler(monkeypatch: pytest.MonkeyPatch) -> None:
    assert settings_from(parse()).keda_scaler is None
    assert settings_from(parse("--keda-scaler-port", "0")).keda_scaler is None
    assert settings_from(parse("--keda-scaler-port", "9443")).keda_scaler == KedaScalerSettings(port=9443)
    monkeypatch.setenv(environment.KEDA_SCALER_PORT, "9443")
    monkeypatch.setenv(environment.KEDA_SCALER_CLIENT_CA_FILE, "/ca/keda-client.crt")
    assert settings_from(parse()).keda_scaler == KedaScalerSettings(
        port=9443, client_ca_file="/ca/keda-client.crt"
    )


@pytest.mark.parametrize("port", ["-1", "70000", "grpc"])
def test_bad_scaler_port_is_refused_naming_the_flag(port: str) -> None:
    with pytest.raises(SettingsError, match="--keda-scaler-port must be a port number"):
        settings_from(parse("--keda-scaler-port", port))
