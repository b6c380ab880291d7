"""The configuration document: loading, validation messages, presets and serving/exposure policy."""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

import pytest

import tidegauge
from tidegauge.config import (
    DEFAULT_CONFIG_YAML,
    PRESETS,
    CloudWatchSource,
    Config,
    ConfigError,
    ExposureDecision,
    Fallback,
    MetricStatSpec,
    SqsSource,
    load_config,
    parse_config,
    schema,
)

EXAMPLE_PATH = Path(tidegauge.__file__).parent / "examples" / "config.yaml"

BASE: dict[str, Any] = {
    "version": 1,
    "redis": {"url": "redis://127.0.0.1:6379/0"},
    "sources": [
        {"name": "orders", "type": "sqs", "region": "eu-west-1", "queues": {"names": ["orders"]}},
        {
            "name": "db",
            "type": "cloudwatch",
            "region": "eu-west-1",
            "queries": [{"preset": "aurora_cpu", "identifier": "prod"}],
        },
    ],
}


def document(**changes: Any) -> dict[str, Any]:
    """A deep copy of the minimal valid document with top-level keys replaced."""
    data = copy.deepcopy(BASE)
    data.update(copy.deepcopy(changes))
    return data


def sqs(**changes: Any) -> dict[str, Any]:
    source: dict[str, Any] = {
        "name": "orders",
        "type": "sqs",
        "region": "eu-west-1",
        "queues": {"names": ["orders"]},
    }
    source.update(changes)
    return source


def cloudwatch(*queries: dict[str, Any], **changes: Any) -> dict[str, Any]:
    source: dict[str, Any] = {
        "name": "db",
        "type": "cloudwatch",
        "region": "eu-west-1",
        "queries": list(queries),
    }
    source.update(changes)
    return source


def errors_of(data: Any) -> ConfigError:
    with pytest.raises(ConfigError) as caught:
        Config.from_mapping(data, origin="test.yaml")
    return caught.value


def only_error(data: Any) -> ConfigError:
    error = errors_of(data)
    assert len(error.errors) == 1, str(error)
    return error


# --- loading ------------------------------------------------------------------------------------------


def test_example_config_loads() -> None:
    # GIVEN the example shipped with the package WHEN it is loaded without environment overrides
    config = load_config(EXAMPLE_PATH, environ={})

    # THEN every section is there, presets are expanded and the redis URL is the file's
    assert config.redis.url.startswith("rediss://")
    assert config.redis.cluster is None
    orders = config.source("orders")
    assert isinstance(orders, SqsSource)
    assert orders.account == "123456789012"
    assert orders.queue_prefixes == ("jobs-",)
    assert orders.queue_tags == (("team", "shop"),)
    aurora = config.source("aurora")
    assert isinstance(aurora, CloudWatchSource)
    cpu = next(query for query in aurora.queries if query.metric == "aurora_cpu_percent")
    assert cpu.metric_stat == MetricStatSpec(
        namespace="AWS/RDS",
        metric_name="CPUUtilization",
        stat="Average",
        dimensions=(("DBClusterIdentifier", "prod"),),
    )
    assert cpu.description == PRESETS["aurora_cpu"].description
    assert cpu.labels == (("cluster", "prod"),)
    assert config.metric_policy("sqs_messages").fallback == Fallback(value=0.0, after_seconds=300.0)
    assert config.exposure is not None


def test_example_config_documents_every_field() -> None:
    text = EXAMPLE_PATH.read_text(encoding="utf-8")
    schema_keys = (
        *schema.TOP_LEVEL_KEYS,
        *schema.REDIS_KEYS,
        *schema.SAMPLING_KEYS,
        *schema.DEFAULTS_KEYS,
        *schema.SQS_KEYS,
        *schema.QUEUES_KEYS,
        *schema.CLOUDWATCH_KEYS,
        *schema.QUERY_KEYS,
        *schema.METRIC_POLICY_KEYS,
        *schema.FALLBACK_KEYS,
        *schema.WINDOW_KEYS,
        *schema.DERIVED_KEYS,
        *schema.EXPOSURE_KEYS,
        *schema.OBJECT_KEYS,
    )

    assert sorted({key for key in schema_keys if f"{key}:" not in text}) == []


def test_default_config_is_the_demo() -> None:
    config = parse_config(DEFAULT_CONFIG_YAML, origin="<default>", environ={})

    assert config.redis.url == "redis://127.0.0.1:6379/0"
    demo = config.source("demo")
    assert isinstance(demo, SqsSource)
    assert (demo.region, demo.queue_names) == ("us-east-1", ("demo-orders",))
    demo_db = config.source("demo-db")
    assert isinstance(demo_db, CloudWatchSource)
    assert [query.metric for query in demo_db.queries] == ["aurora_cpu_percent"]
    assert demo_db.queries[0].metric_stats[0].dimensions == (("DBClusterIdentifier", "demo"),)


def test_json_document_is_accepted() -> None:
    config = parse_config(json.dumps(BASE, indent="\t"), environ={})

    assert [source.name for source in config.sources] == ["orders", "db"]


def test_yaml_flow_mapping_is_not_mistaken_for_json() -> None:
    text = (
        "{version: 1, redis: {url: 'redis://h:6379/0'}, "
        "sources: [{name: q, type: sqs, region: us-east-1, queues: {names: [a]}}]}"
    )

    assert parse_config(text, environ={}).source("q").region == "us-east-1"


def test_yaml_syntax_error_reports_line_and_column() -> None:
    text = "version: 1\nredis:\n  url: redis://h:6379/0\n  cluster: [auto\nsources: []\n"

    with pytest.raises(ConfigError) as caught:
        parse_config(text, origin="broken.yaml", environ={})

    error = caught.value
    assert error.field.startswith("line 5, column")
    assert str(error).startswith("broken.yaml: line 5, column")
    assert "invalid YAML" in error.problem
    assert "Fix: correct the YAML syntax" in str(error)


def test_duplicate_yaml_key_is_an_error_with_its_line() -> None:
    text = "version: 1\nredis:\n  url: redis://a:6379/0\n  url: redis://b:6379/0\n"

    with pytest.raises(ConfigError) as caught:
        parse_config(text, environ={})

    assert caught.value.field == "line 4, column 3"
    assert "duplicate key 'url'" in caught.value.problem


def test_duplicate_json_key_is_an_error() -> None:
    with pytest.raises(ConfigError) as caught:
        parse_config('{"version": 1, "version": 1}', environ={})

    assert caught.value.problem == "duplicate key 'version' in a JSON object"


def test_yaml_anchors_and_merge_keys_are_not_duplicates() -> None:
    text = """
version: 1
redis: {url: "redis://h:6379/0"}
sources:
  - &orders {name: orders, type: sqs, region: eu-west-1, queues: {names: [orders]}}
  - <<: *orders
    name: payments
    queues: {names: [payments]}
"""

    config = parse_config(text, environ={})

    assert [source.name for source in config.sources] == ["orders", "payments"]


def test_invalid_json_reports_line() -> None:
    with pytest.raises(ConfigError) as caught:
        parse_config('{"version": 1\n "redis": {}}', environ={})

    assert caught.value.field == "line 2, column 2"
    assert caught.value.problem == "invalid JSON: Expecting ',' delimiter"


def test_empty_document_is_an_error() -> None:
    with pytest.raises(ConfigError, match="the configuration is empty"):
        parse_config("# nothing\n", environ={})


def test_empty_document_error_names_the_example_by_its_path_from_the_repository_root() -> None:
    # GIVEN an empty document
    with pytest.raises(ConfigError) as caught:
        parse_config("", environ={})
    # THEN the fix names a path that exists when followed from the repository root
    (path,) = [word for word in caught.value.fix.split() if word.endswith("config.yaml")]
    repository = Path(__file__).resolve().parents[2]
    assert (repository / path).resolve() == EXAMPLE_PATH.resolve()


def test_top_level_must_be_a_mapping() -> None:
    error = only_error(["version", 1])

    assert "expected a mapping at the top level, got a list" in error.problem


def test_missing_file_is_a_config_error(tmp_path: Path) -> None:
    missing = tmp_path / "absent.yaml"

    with pytest.raises(ConfigError) as caught:
        load_config(missing, environ={})

    assert str(caught.value).startswith(f"{missing}: (document): cannot read the file")
    assert "check the path" in caught.value.fix


# --- environment overrides ----------------------------------------------------------------------------


def test_environment_overrides_redis_url() -> None:
    text = json.dumps(BASE)

    config = parse_config(text, environ={"TIDEGAUGE_REDIS_URL": "rediss://cache.example:6380/2"})

    assert config.redis.url == "rediss://cache.example:6380/2"


def test_explicit_redis_url_beats_environment() -> None:
    config = parse_config(
        json.dumps(BASE),
        environ={"TIDEGAUGE_REDIS_URL": "redis://from-env:6379/0"},
        redis_url="redis://from-argument:6379/0",
    )

    assert config.redis.url == "redis://from-argument:6379/0"


def test_environment_supplies_a_missing_redis_url() -> None:
    data = document(redis={"cluster": True})

    config = parse_config(json.dumps(data), environ={"TIDEGAUGE_REDIS_URL": "redis://env:6379/0"})

    assert (config.redis.url, config.redis.cluster) == ("redis://env:6379/0", True)


def test_empty_environment_variable_is_ignored() -> None:
    config = parse_config(json.dumps(BASE), environ={"TIDEGAUGE_REDIS_URL": ""})

    assert config.redis.url == "redis://127.0.0.1:6379/0"


def test_invalid_redis_url_from_environment_names_the_variable() -> None:
    with pytest.raises(ConfigError) as caught:
        parse_config(json.dumps(BASE), environ={"TIDEGAUGE_REDIS_URL": "http://cache:6379"})

    assert caught.value.field == "redis.url"
    assert "value from TIDEGAUGE_REDIS_URL" in caught.value.problem
    assert "rediss://" in caught.value.fix


def test_process_environment_is_the_default(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TIDEGAUGE_REDIS_URL", "redis://process-env:6379/0")

    assert parse_config(json.dumps(BASE)).redis.url == "redis://process-env:6379/0"


# --- validation errors --------------------------------------------------------------------------------


def test_single_error_message_format() -> None:
    error = only_error(document(redis={}))

    assert error.field == "redis.url"
    assert error.errors[0].problem == "is required"
    assert str(error) == (
        "test.yaml: redis.url: is required. Fix: set redis.url (e.g. redis://127.0.0.1:6379/0) "
        "or the TIDEGAUGE_REDIS_URL environment variable"
    )


def test_missing_redis_section_reports_the_url() -> None:
    data = document()
    del data["redis"]

    assert only_error(data).field == "redis.url"


def test_missing_version() -> None:
    data = document()
    del data["version"]

    error = only_error(data)

    assert (error.field, error.problem) == ("version", "is required")
    assert "version: 1" in error.fix


def test_unsupported_version() -> None:
    error = only_error(document(version=2))

    assert error.field == "version"
    assert "unsupported schema version 2" in error.problem


def test_missing_sources() -> None:
    data = document()
    del data["sources"]

    error = only_error(data)

    assert error.field == "sources"
    assert "type: sqs or type: cloudwatch" in error.fix


def test_unknown_key_suggests_the_closest_and_lists_allowed() -> None:
    error = only_error(document(sampling={"interval_secnds": 10}))

    assert error.field == "sampling.interval_secnds"
    assert "unknown key 'interval_secnds' (did you mean 'interval_seconds'?)" in error.problem
    assert "interval_seconds, quiet_period_seconds, max_workers, deadline_margin_seconds" in error.fix


def test_unknown_key_without_a_close_match_still_lists_allowed() -> None:
    error = only_error(document(extra=True))

    assert error.field == "extra"
    assert error.problem == "unknown key 'extra'"
    assert "version, redis, sampling, defaults, sources, metrics, exposure" in error.fix


def test_unknown_key_inside_a_query_is_reported() -> None:
    query = {"preset": "aurora_cpu", "identifier": "prod", "dimension": "x"}

    error = only_error(document(sources=[cloudwatch(query)]))

    assert error.field == "sources[0].queries[0].dimension"
    assert "did you mean 'dimensions'?" in error.problem


def test_wrong_type_names_the_expected_type() -> None:
    error = only_error(document(sampling={"max_workers": "many"}))

    assert error.field == "sampling.max_workers"
    assert error.problem == "expected an integer, got string 'many'"
    assert "as an integer" in error.fix


def test_boolean_is_not_a_number() -> None:
    error = only_error(document(defaults={"max_age_seconds": True}))

    assert error.problem == "expected a number, got boolean true"


def test_label_value_must_be_a_string() -> None:
    error = only_error(document(sources=[sqs(labels={"tier": 1})]))

    assert error.field == "sources[0].labels.tier"
    assert error.problem == "expected a string, got integer 1"
    assert 'quote it, e.g. tier: "1"' in error.fix


def test_value_out_of_range_states_the_range() -> None:
    error = only_error(document(sampling={"interval_seconds": 0}))

    assert error.field == "sampling.interval_seconds"
    assert error.problem == "must be between 1 and 60, got 0"
    assert "between 1 and 60" in error.fix


@pytest.mark.parametrize("region", ["eu-west", "EU-WEST-1", "euwest1", "eu-west-1a"])
def test_bad_region(region: str) -> None:
    error = only_error(document(sources=[sqs(region=region)]))

    assert error.field == "sources[0].region"
    assert "not a valid AWS region" in error.problem
    assert "eu-west-1" in error.fix


@pytest.mark.parametrize("region", ["us-gov-west-1", "ap-southeast-2", "cn-north-1"])
def test_regions_of_all_partitions_are_accepted(region: str) -> None:
    config = Config.from_mapping(document(sources=[sqs(region=region)]))

    assert config.source("orders").region == region


@pytest.mark.parametrize(
    "role_arn",
    ["arn:aws:iam::123:role/reader", "arn:aws:iam::123456789012:user/reader", "role/reader"],
)
def test_bad_role_arn(role_arn: str) -> None:
    error = only_error(document(sources=[sqs(role_arn=role_arn)]))

    assert error.field == "sources[0].role_arn"
    assert "not a valid IAM role ARN" in error.problem
    assert "arn:aws:iam::<12-digit account>:role/<name>" in error.fix


def test_role_arn_with_path_and_partition_is_accepted() -> None:
    arn = "arn:aws-us-gov:iam::123456789012:role/service/tidegauge-reader"

    assert Config.from_mapping(document(sources=[sqs(role_arn=arn)])).source("orders").role_arn == arn


def test_account_as_a_number_must_be_quoted() -> None:
    error = only_error(document(sources=[sqs(account=123456789012)]))

    assert error.field == "sources[0].account"
    assert "quoted string" in error.problem
    assert 'account: "012345678901"' in error.fix


def test_account_must_have_twelve_digits() -> None:
    error = only_error(document(sources=[sqs(account="12345")]))

    assert error.field == "sources[0].account"
    assert "not a valid AWS account id" in error.problem


def test_queue_url_in_another_region_is_rejected() -> None:
    url = "https://sqs.us-east-1.amazonaws.com/123456789012/orders"

    error = only_error(document(sources=[sqs(queues={"names": [url]})]))

    assert error.field == "sources[0].queues.names[0]"
    assert "region us-east-1" in error.problem


def test_queue_url_of_another_account_is_rejected() -> None:
    url = "https://sqs.eu-west-1.amazonaws.com/123456789012/orders"

    error = only_error(document(sources=[sqs(account="210987654321", queues={"names": [url]})]))

    assert error.field == "sources[0].queues.names[0]"
    assert "account 123456789012" in error.problem


def test_queue_url_of_a_local_endpoint_is_accepted() -> None:
    url = "http://127.0.0.1:5000/123456789012/orders.fifo"

    source = Config.from_mapping(document(sources=[sqs(queues={"names": [url]})])).source("orders")

    assert isinstance(source, SqsSource)
    assert source.queue_names == (url,)


def test_sqs_source_must_select_queues() -> None:
    error = only_error(document(sources=[sqs(queues={"names": []})]))

    assert error.field == "sources[0].queues"
    assert error.problem == "selects no queues"


def test_invalid_source_name() -> None:
    error = only_error(document(sources=[sqs(name="Orders_1")]))

    assert error.field == "sources[0].name"
    assert "lower-case" in error.fix


def test_unknown_source_type_suggests_the_closest() -> None:
    error = only_error(document(sources=[sqs(type="sq")]))

    assert error.field == "sources[0].type"
    assert "did you mean 'sqs'?" in error.problem


def test_duplicate_source_name() -> None:
    error = only_error(document(sources=[sqs(), sqs(queues={"names": ["payments"]})]))

    assert error.field == "sources[1].name"
    assert "duplicate source name 'orders', already used by sources[0]" in error.problem
    assert "unique name" in error.fix


@pytest.mark.parametrize("label", ["queue", "region", "account", "state"])
def test_sqs_labels_cannot_override_reserved_labels(label: str) -> None:
    error = only_error(document(sources=[sqs(labels={label: "x"})]))

    assert error.field == f"sources[0].labels.{label}"
    assert f"reserved label {label!r}" in error.problem
    assert "set per queue" in error.fix


def test_label_key_must_be_a_kubernetes_label_key() -> None:
    error = only_error(document(sources=[sqs(labels={"team name": "shop"})]))

    assert error.field == "sources[0].labels.team name"
    assert "not a valid label key" in error.problem


def test_duplicate_metric_and_labels_names_both_queries() -> None:
    first = cloudwatch({"preset": "rds_cpu", "identifier": "main"}, name="db-a")
    second = cloudwatch(
        {
            "metric": "rds_cpu_percent",
            "namespace": "AWS/RDS",
            "metric_name": "CPUUtilization",
            "stat": "Maximum",
            "labels": {"instance": "main"},
        },
        name="db-b",
    )

    error = only_error(document(sources=[first, second]))

    assert error.field == "sources[1].queries[0]"
    assert "'rds_cpu_percent' with instance=main" in error.problem
    assert "sources[0].queries[0] (source 'db-a')" in error.problem
    assert "different metric name or a distinguishing label" in error.fix


def test_same_metric_with_different_labels_is_allowed() -> None:
    source = cloudwatch({"preset": "rds_cpu", "identifier": "a"}, {"preset": "rds_cpu", "identifier": "b"})

    config = Config.from_mapping(document(sources=[source]))

    assert config.metric_names() == ("rds_cpu_percent",)


def test_query_metric_may_not_reuse_an_sqs_metric() -> None:
    query = {"metric": "sqs_messages", "namespace": "AWS/SQS", "metric_name": "X", "stat": "Sum"}

    error = only_error(document(sources=[sqs(), cloudwatch(query)]))

    assert error.field == "sources[1].queries[0].metric"
    assert "SQS source 'orders'" in error.problem


def test_query_with_two_kinds() -> None:
    query = {
        "metric": "m",
        "namespace": "AWS/RDS",
        "metric_name": "CPU",
        "stat": "Average",
        "preset": "rds_cpu",
    }

    error = only_error(document(sources=[cloudwatch(query)]))

    assert error.field == "sources[0].queries[0]"
    assert error.problem == "mixes namespace/metric_name/stat and preset/identifier"
    assert "keep exactly one of" in error.fix


def test_query_without_any_kind() -> None:
    error = only_error(document(sources=[cloudwatch({"metric": "m"})]))

    assert error.problem == "says nothing to query"
    assert "preset/identifier" in error.fix


def test_query_kind_with_a_missing_part() -> None:
    query = {"metric": "m", "namespace": "AWS/RDS", "metric_name": "CPU"}

    error = only_error(document(sources=[cloudwatch(query)]))

    assert (error.field, error.problem) == ("sources[0].queries[0].stat", "is required")


def test_unknown_preset_lists_known_presets() -> None:
    error = only_error(document(sources=[cloudwatch({"preset": "aurora_cpus", "identifier": "prod"})]))

    assert error.field == "sources[0].queries[0].preset"
    assert "did you mean 'aurora_cpu'?" in error.problem
    assert all(name in error.fix for name in PRESETS)


def test_preset_is_expanded_for_collectors() -> None:
    source = cloudwatch({"preset": "dynamodb_write_capacity", "identifier": "carts"})

    query = Config.from_mapping(document(sources=[source])).sources[0]
    assert isinstance(query, CloudWatchSource)
    (expanded,) = query.queries

    assert expanded.metric == "dynamodb_consumed_write_per_second"
    assert expanded.metric_stat == MetricStatSpec(
        namespace="AWS/DynamoDB",
        metric_name="ConsumedWriteCapacityUnits",
        stat="Sum",
        dimensions=(("TableName", "carts"),),
    )
    assert expanded.labels == (("table", "carts"),)
    assert expanded.scale == pytest.approx(1 / 60)
    assert not expanded.is_expression


def test_preset_fields_can_be_overridden() -> None:
    query = {
        "preset": "aurora_db_load",
        "identifier": "prod",
        "metric": "db_load",
        "missing_as_zero": False,
        "labels": {"env": "prod"},
        "period_seconds": 300,
        "max_age_seconds": 900,
    }

    source = Config.from_mapping(document(sources=[cloudwatch(query)])).sources[0]

    assert isinstance(source, CloudWatchSource)
    expanded = source.queries[0]
    assert (expanded.metric, expanded.missing_as_zero, expanded.period_seconds) == ("db_load", False, 300)
    assert expanded.labels == (("cluster", "prod"), ("env", "prod"))


def test_every_preset_defines_a_label_and_a_valid_metric() -> None:
    for name, preset in PRESETS.items():
        config = Config.from_mapping(document(sources=[cloudwatch({"preset": name, "identifier": "x"})]))
        source = config.sources[0]
        assert isinstance(source, CloudWatchSource)
        assert source.queries[0].labels == ((preset.label, "x"),)
        assert config.metric_names() == (preset.metric,)


def test_preset_label_cannot_be_overridden() -> None:
    query = {"preset": "aurora_cpu", "identifier": "prod", "labels": {"cluster": "other"}}

    error = only_error(document(sources=[cloudwatch(query)]))

    assert error.field == "sources[0].queries[0].labels.cluster"
    assert "the preset sets 'cluster' from identifier" in error.fix


@pytest.mark.parametrize("period", [1, 5, 10, 30, 60, 300, 3600])
def test_allowed_periods(period: int) -> None:
    query = {"preset": "rds_cpu", "identifier": "x", "period_seconds": period, "max_age_seconds": 10_000}

    Config.from_mapping(document(sources=[cloudwatch(query, lookback_seconds=7200)]))


@pytest.mark.parametrize("period", [2, 45, 90])
def test_period_not_allowed(period: int) -> None:
    query = {"preset": "rds_cpu", "identifier": "x", "period_seconds": period, "max_age_seconds": 600}

    error = only_error(document(sources=[cloudwatch(query)]))

    assert error.field == "sources[0].queries[0].period_seconds"
    assert "1, 5, 10, 30 (high-resolution metrics) or a multiple of 60" in error.fix


def test_period_longer_than_lookback() -> None:
    query = {"preset": "rds_cpu", "identifier": "x", "period_seconds": 900, "max_age_seconds": 3600}

    error = only_error(document(sources=[cloudwatch(query, lookback_seconds=600)]))

    assert error.field == "sources[0].queries[0].period_seconds"
    assert "lookback_seconds" in error.fix


def test_max_age_must_exceed_the_period() -> None:
    query = {"preset": "rds_cpu", "identifier": "x", "period_seconds": 300}

    error = only_error(document(sources=[cloudwatch(query)]))

    assert error.field == "sources[0].queries[0]"
    assert "120 s (defaults.max_age_seconds)" in error.problem
    assert "e.g. 720" in error.fix


@pytest.mark.parametrize(
    "stat", ["Average", "SampleCount", "IQM", "p99", "p99.9", "tm90", "wm99", "TM(10%:90%)"]
)
def test_statistic_forms_are_accepted(stat: str) -> None:
    query = {"metric": "m", "namespace": "N", "metric_name": "M", "stat": stat}

    Config.from_mapping(document(sources=[cloudwatch(query)]))


@pytest.mark.parametrize("stat", ["average", "Mean", "p101", "p", "q99"])
def test_unknown_statistic(stat: str) -> None:
    query = {"metric": "m", "namespace": "N", "metric_name": "M", "stat": stat}

    error = only_error(document(sources=[cloudwatch(query)]))

    assert error.field == "sources[0].queries[0].stat"
    assert "p99" in error.fix


def test_expression_query() -> None:
    query = {
        "metric": "orders_per_second",
        "expression": "FILL(m1, 0) / 60",
        "metrics": {
            "m1": {
                "namespace": "AWS/SQS",
                "metric_name": "NumberOfMessagesSent",
                "stat": "Sum",
                "dimensions": {"QueueName": "orders"},
            }
        },
    }

    source = Config.from_mapping(document(sources=[cloudwatch(query)])).sources[0]

    assert isinstance(source, CloudWatchSource)
    expanded = source.queries[0]
    assert expanded.is_expression
    assert [(metric_id, spec.metric_name) for metric_id, spec in expanded.metrics] == [
        ("m1", "NumberOfMessagesSent")
    ]


def test_expression_referring_to_an_undefined_id() -> None:
    query = {
        "metric": "ratio",
        "expression": "m1 / m2",
        "metrics": {"m1": {"namespace": "N", "metric_name": "A", "stat": "Sum"}},
    }

    error = only_error(document(sources=[cloudwatch(query)]))

    assert error.field == "sources[0].queries[0].expression"
    assert "refers to 'm2'" in error.problem
    assert "(defined: m1)" in error.fix


def test_expression_metric_needs_namespace_name_and_stat() -> None:
    query = {"metric": "ratio", "expression": "m1", "metrics": {"m1": {"namespace": "N", "metric_name": "A"}}}

    error = only_error(document(sources=[cloudwatch(query)]))

    assert (error.field, error.problem) == ("sources[0].queries[0].metrics.m1.stat", "is required")


@pytest.mark.parametrize(
    ("cluster", "expected"), [("auto", None), (True, True), (False, False), ("true", True), ("false", False)]
)
def test_redis_cluster_setting(cluster: object, expected: bool | None) -> None:
    data = document(redis={"url": "redis://h:6379/0", "cluster": cluster})

    assert Config.from_mapping(data).redis.cluster is expected


@pytest.mark.parametrize(
    ("url", "problem"),
    [
        ("http://h:6379", "scheme http:// is not supported"),
        ("redis://:6379/0", "has no host"),
        ("redis://h:6379/zero", "database 'zero' is not a number"),
        ("unix://", "has no socket path"),
        ("redis://[::1:6379/0", "is not a valid URL (check the port and any [IPv6] address)"),
    ],
)
def test_bad_redis_url(url: str, problem: str) -> None:
    error = only_error(document(redis={"url": url}))

    assert (error.field, error.problem) == ("redis.url", problem)


def test_redis_password_never_appears_in_repr_or_errors() -> None:
    config = Config.from_mapping(document(redis={"url": "redis://user:s3cret@h:6379/0"}))

    assert "s3cret" not in repr(config)
    assert config.redis.redacted_url == "redis://user:***@h:6379/0"
    error = only_error(document(redis={"url": "redis://user:s3cret@h:port/0"}))
    assert "s3cret" not in str(error)


def test_tls_ca_file_requires_rediss() -> None:
    error = only_error(document(redis={"url": "redis://h:6379/0", "tls_ca_file": "/etc/ca.pem"}))

    assert error.field == "redis.tls_ca_file"
    assert "rediss://" in error.fix


def test_redis_username_needs_a_password() -> None:
    error = only_error(document(redis={"url": "rediss://h:6379/0", "username": "tidegauge"}))

    assert error.field == "redis.username"
    assert "password_secret" in error.fix


def test_bad_exposure_selector_includes_the_selector_error() -> None:
    exposure = [{"namespaces": ["shop"], "metrics": ["sqs_messages"], "selector": "queue in (a"}]

    error = only_error(document(exposure=exposure))

    assert error.field == "exposure[0].selector"
    assert error.problem.startswith("selector 'queue in (a': ")
    assert "invalid label selector" in error.problem
    assert "label-selector syntax" in error.fix


def test_exposure_of_an_unproduced_metric_suggests_the_closest() -> None:
    exposure = [{"namespaces": ["shop"], "metrics": ["sqs_message"]}]

    error = only_error(document(exposure=exposure))

    assert error.field == "exposure[0].metrics[0]"
    assert "did you mean 'sqs_messages'?" in error.problem


def test_empty_exposure_list_is_an_error() -> None:
    error = only_error(document(exposure=[]))

    assert error.field == "exposure"
    assert "remove exposure" in error.fix


def test_metrics_entry_for_an_unproduced_metric_is_an_error() -> None:
    error = only_error(document(metrics={"sqs_mesages": {"unit": "messages"}}))

    assert error.field == "metrics.sqs_mesages"
    assert "did you mean 'sqs_messages'?" in error.problem


def test_fallback_needs_value_and_after_seconds() -> None:
    error = only_error(document(metrics={"sqs_messages": {"fallback": {"value": 0}}}))

    assert (error.field, error.problem) == ("metrics.sqs_messages.fallback.after_seconds", "is required")


def test_multiple_errors_are_reported_together() -> None:
    # GIVEN a document with problems in three different sections
    data = document(
        version=3,
        sampling={"max_workers": 0},
        sources=[sqs(region="moon-1", labels={"state": "x"})],
    )

    # WHEN it is validated THEN one error lists each problem on its own line, in document order
    error = errors_of(data)

    assert [issue.field for issue in error.errors] == [
        "version",
        "sampling.max_workers",
        "sources[0].region",
        "sources[0].labels.state",
    ]
    lines = str(error).splitlines()
    assert len(lines) == 4
    assert all(line.startswith("test.yaml: ") and ". Fix: " in line for line in lines)
    assert error.field == "version"


# --- lookups and policies -----------------------------------------------------------------------------


def test_source_lookup_names_known_sources() -> None:
    config = Config.from_mapping(document())

    assert config.source("orders").name == "orders"
    with pytest.raises(KeyError, match="known sources: orders, db"):
        config.source("payments")


def test_metric_policy_merges_entry_with_defaults() -> None:
    data = document(
        defaults={"max_age_seconds": 100},
        metrics={"sqs_messages": {"unit": "messages", "fallback": {"value": 5, "after_seconds": 60}}},
    )

    policy = Config.from_mapping(data).metric_policy("sqs_messages")

    assert policy.max_age_seconds == 100
    assert (policy.unit, policy.fallback) == ("messages", Fallback(value=5.0, after_seconds=60.0))


def test_metric_policy_entry_max_age_wins() -> None:
    data = document(sources=[sqs(max_age_seconds=30)], metrics={"sqs_messages": {"max_age_seconds": 45}})

    assert Config.from_mapping(data).metric_policy("sqs_messages").max_age_seconds == 45


def test_metric_policy_uses_the_largest_producer_max_age() -> None:
    data = document(
        sources=[
            sqs(max_age_seconds=30),
            sqs(name="payments", queues={"names": ["payments"]}, max_age_seconds=90),
            sqs(name="jobs", queues={"prefixes": ["jobs-"]}),
        ],
        defaults={"max_age_seconds": 60},
    )

    assert Config.from_mapping(data).metric_policy("sqs_messages").max_age_seconds == 90


def test_metric_policy_of_a_query_uses_its_max_age() -> None:
    data = document(
        sources=[cloudwatch({"preset": "aurora_cpu", "identifier": "prod", "max_age_seconds": 300})]
    )

    policy = Config.from_mapping(data).metric_policy("aurora_cpu_percent")

    assert policy.max_age_seconds == 300
    assert policy.fallback is None


def test_metric_policy_of_an_unknown_metric_uses_defaults() -> None:
    config = Config.from_mapping(document(defaults={"max_age_seconds": 75}))

    assert config.metric_policy("nothing_produces_this").max_age_seconds == 75


def test_absent_exposure_allows_every_namespace_every_series() -> None:
    config = Config.from_mapping(document())

    assert config.exposure is None
    assert config.exposure_for("any-namespace", "sqs_messages") == ExposureDecision(
        allowed=True, selectors=()
    )


def test_present_exposure_denies_unmatched_namespace_and_metric() -> None:
    config = Config.from_mapping(document(exposure=[{"namespaces": ["shop"], "metrics": ["sqs_messages"]}]))

    assert config.exposure_for("shop", "sqs_messages").allowed
    assert not config.exposure_for("billing", "sqs_messages").allowed
    assert not config.exposure_for("shop", "aurora_cpu_percent").allowed


def test_exposure_matches_globs() -> None:
    exposure = [{"namespaces": ["team-*"], "metrics": ["aurora_*"]}]
    config = Config.from_mapping(document(exposure=exposure))

    assert config.exposure_for("team-a", "aurora_cpu_percent").allowed
    assert not config.exposure_for("teams", "aurora_cpu_percent").allowed
    assert not config.exposure_for("team-a", "sqs_messages").allowed


def test_exposure_collects_selectors_of_every_matching_rule() -> None:
    exposure = [
        {"namespaces": ["shop"], "metrics": ["sqs_messages"], "selector": "team=shop"},
        {"namespaces": ["sh*"], "metrics": ["*"], "selector": "queue in (shared)"},
        {"namespaces": ["billing"], "metrics": ["*"], "selector": "team=billing"},
    ]
    config = Config.from_mapping(document(exposure=exposure))

    decision = config.exposure_for("shop", "sqs_messages")

    assert decision == ExposureDecision(allowed=True, selectors=("team=shop", "queue in (shared)"))
    assert decision.restricted


def test_exposure_rule_without_selector_exposes_every_series() -> None:
    exposure = [
        {"namespaces": ["shop"], "metrics": ["sqs_messages"], "selector": "team=shop"},
        {"namespaces": ["*"], "metrics": ["sqs_messages"]},
    ]
    config = Config.from_mapping(document(exposure=exposure))

    decision = config.exposure_for("shop", "sqs_messages")

    assert decision == ExposureDecision(allowed=True, selectors=())
    assert not decision.restricted
