"""`tidegauge config check`: a config validated from a file or its SSM parameter, with nothing run."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import boto3
import pytest

from tests.support.collectors import moto_server
from tidegauge.cli import main
from tidegauge.errors import UsageError
from tidegauge.sources.collect import loop

VALID = """\
version: 1
redis:
  url: redis://:hunter2@cache.internal:6379/0
  cluster: true
sources:
  - name: shop
    type: sqs
    region: eu-west-1
    queues:
      names: [orders]
"""


@pytest.fixture(scope="module")
def aws() -> Iterator[str]:
    with moto_server() as endpoint:
        yield endpoint


@pytest.fixture
def aws_environment(aws: str, monkeypatch: pytest.MonkeyPatch) -> str:
    monkeypatch.delenv("AWS_PROFILE", raising=False)
    monkeypatch.delenv("TIDEGAUGE_REDIS_URL", raising=False)
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    monkeypatch.setenv("AWS_DEFAULT_REGION", "eu-west-1")
    return aws


def test_a_valid_file_passes_and_says_what_it_sets_up(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.delenv("TIDEGAUGE_REDIS_URL", raising=False)
    config = tmp_path / "config.yaml"
    config.write_text(VALID)
    assert main(["config", "check", str(config)]) == 0
    out = capsys.readouterr().out
    assert "valid: 1 sources, 1 metrics" in out
    assert "source shop: sqs" in out
    assert "metric sqs_messages: max age" in out
    assert "cluster: yes" in out
    assert "hunter2" not in out, "the password is never printed"


def test_an_invalid_file_lists_every_issue_and_exits_2(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    config = tmp_path / "config.yaml"
    config.write_text(VALID.replace("type: sqs", "type: sqss").replace("version: 1", "version: 1\nextra: 1"))
    assert main(["config", "check", str(config)]) == 2
    error = capsys.readouterr().err
    assert "sources[0].type" in error
    assert "Fix:" in error
    assert "extra" in error


def test_a_parameter_is_checked_without_collecting(
    aws_environment: str, capsys: pytest.CaptureFixture[str]
) -> None:
    # GIVEN the config in an SSM parameter, and one that is broken
    ssm = boto3.client("ssm", endpoint_url=aws_environment)
    ssm.put_parameter(Name="/tidegauge/good", Value=VALID, Type="SecureString", Overwrite=True)
    ssm.put_parameter(Name="/tidegauge/bad", Value="version: 2\n", Type="String", Overwrite=True)
    sqs_queues_before = boto3.client("sqs", endpoint_url=aws_environment).list_queues().get("QueueUrls", [])
    # WHEN each is checked THEN the good one passes, the bad one names its origin and exits 2
    assert main(["config", "check", "--from-ssm", "/tidegauge/good", "--endpoint-url", aws_environment]) == 0
    assert "valid: 1 sources" in capsys.readouterr().out
    assert main(["config", "check", "--from-ssm", "/tidegauge/bad", "--endpoint-url", aws_environment]) == 2
    assert "ssm:/tidegauge/bad" in capsys.readouterr().err
    # AND a parameter that does not exist is a run-time failure, said on one line
    assert main(["config", "check", "--from-ssm", "/tidegauge/none", "--endpoint-url", aws_environment]) == 1
    error = capsys.readouterr().err.strip().splitlines()
    assert len(error) == 1
    assert "cannot read the SSM parameter /tidegauge/none" in error[0]
    # AND nothing was collected
    assert (
        boto3.client("sqs", endpoint_url=aws_environment).list_queues().get("QueueUrls", [])
        == sqs_queues_before
    )


@pytest.mark.parametrize(
    "arguments",
    [["--every", "0"], ["--every", "-5"], ["--every", "nan"], ["--duration", "0"], ["--timeout", "-1"]],
)
def test_collect_loop_refuses_non_positive_periods(
    arguments: list[str], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    config = tmp_path / "config.yaml"
    config.write_text(VALID)
    # WHEN a period is zero, negative or not a number THEN it is a usage error before anything runs
    with pytest.raises(SystemExit) as exit_info:
        main(["collect", "--loop", *arguments, "--config", str(config)])
    assert exit_info.value.code == 2
    assert "give a number of seconds greater than 0" in capsys.readouterr().err


def test_the_loop_itself_refuses_a_zero_period() -> None:
    # GIVEN a caller that bypasses the argument parser
    with pytest.raises(UsageError, match="--every must be greater than 0"):
        loop(lambda: 0, every_seconds=0, duration_seconds=1)


def test_a_file_with_object_rules_passes_and_lists_them(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    # GIVEN a config whose objects: section maps queue series to Deployments
    monkeypatch.delenv("TIDEGAUGE_REDIS_URL", raising=False)
    config = tmp_path / "config.yaml"
    config.write_text(
        VALID
        + "objects:\n"
        + "  - {metric: sqs_messages, resource: deploy, namespace: shop, name: '{queue}-worker'}\n"
    )
    # WHEN it is checked THEN it is valid and each rule is listed with its canonical resource
    assert main(["config", "check", str(config)]) == 0
    out = capsys.readouterr().out
    assert "object deployments.apps shop/{queue}-worker: series of sqs_messages" in out


def test_a_bad_object_rule_fails_the_check_naming_the_field(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    config = tmp_path / "config.yaml"
    config.write_text(VALID + "objects:\n  - {metric: sqs_messages, resource: deploy, name: x}\n")
    assert main(["config", "check", str(config)]) != 0
    assert "objects[0].namespace: is required. Fix: set namespace" in capsys.readouterr().err
