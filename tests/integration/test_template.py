"""The SAM application: cfn-lint clean, transformed by the SAM translator, least-privilege IAM."""

from __future__ import annotations

import copy
import importlib
import re
import shutil
import subprocess
import sys
import tomllib
from collections.abc import Iterator
from importlib import metadata
from pathlib import Path
from typing import Any, cast

import botocore.session
import pytest
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name
from samtranslator.translator.transform import transform
from samtranslator.yaml_helper import yaml_parse

from tidegauge.sources.function import IDLE_HEARTBEAT_METRIC

ROOT = Path(__file__).resolve().parents[2]
TEMPLATE = ROOT / "template.yaml"

# Every action the collectors' own statements may grant, and the one SAM adds for the on-failure queue.
ALLOWED_ACTIONS = {
    "sqs:GetQueueAttributes",
    "sqs:ListQueueTags",
    "sqs:GetQueueUrl",
    "sqs:ListQueues",
    "cloudwatch:GetMetricData",
    "ssm:GetParameter",
    "secretsmanager:GetSecretValue",
    "sts:AssumeRole",
    "sqs:SendMessage",
}
# Actions without resource-level permissions: the only ones allowed on Resource "*".
ACTIONS_ON_ANY_RESOURCE = {"sqs:ListQueues", "cloudwatch:GetMetricData"}
EXPECTED_MANAGED_POLICIES = {
    "service-role/AWSLambdaBasicExecutionRole",
    "service-role/AWSLambdaVPCAccessExecutionRole",
    "AWSXrayWriteOnlyAccess",
}


class NoManagedPolicyLookups:
    """Managed-policy loader for an offline transform: the template names no managed policy."""

    def load(self) -> dict[str, str]:
        raise AssertionError("the template must not need a managed-policy lookup")


def load_template() -> dict[str, Any]:
    document: dict[str, Any] = yaml_parse(TEMPLATE.read_text())
    return document


def packaged(template: dict[str, Any]) -> dict[str, Any]:
    """What `sam package` hands to CloudFormation: local code paths replaced by S3 locations."""
    result = copy.deepcopy(template)
    for name, resource in result["Resources"].items():
        properties = resource.get("Properties", {})
        for key in ("CodeUri", "ContentUri"):
            if key in properties:
                properties[key] = f"s3://artifacts/{name}.zip"
    return result


@pytest.fixture(scope="module")
def transformed() -> dict[str, Any]:
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("AWS_DEFAULT_REGION", "eu-west-1")
        result: dict[str, Any] = transform(packaged(load_template()), {}, NoManagedPolicyLookups())
    return result


def resources_of_type(template: dict[str, Any], kind: str) -> dict[str, dict[str, Any]]:
    return {name: r for name, r in template["Resources"].items() if r["Type"] == kind}


def branches(value: Any) -> Iterator[Any]:
    """Every concrete value a property can take: both branches of each Fn::If, no AWS::NoValue."""
    if isinstance(value, dict) and set(value) == {"Fn::If"}:
        _, when_true, when_false = value["Fn::If"]
        yield from branches(when_true)
        yield from branches(when_false)
    elif value != {"Ref": "AWS::NoValue"}:
        yield value


def statements(role: dict[str, Any]) -> Iterator[dict[str, Any]]:
    for policy in role["Properties"].get("Policies", []):
        for concrete in branches(policy):
            yield from concrete["PolicyDocument"]["Statement"]


def as_list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else [value]


def function_roles(template: dict[str, Any]) -> dict[str, dict[str, Any]]:
    roles = {}
    for name, function in resources_of_type(template, "AWS::Lambda::Function").items():
        role_name = function["Properties"]["Role"]["Fn::GetAtt"][0]
        roles[name] = template["Resources"][role_name]
    return roles


def test_cfn_lint_reports_nothing() -> None:
    # GIVEN cfn-lint from the same environment as the tests
    candidate = Path(sys.executable).with_name("cfn-lint")
    executable = str(candidate) if candidate.exists() else shutil.which("cfn-lint")
    assert executable, "cfn-lint is not installed; install the dev extra (pip install -e '.[dev]')"
    # WHEN it lints the template
    result = subprocess.run(
        [executable, str(TEMPLATE)], capture_output=True, text=True, timeout=120, cwd=ROOT, check=False
    )
    # THEN it finds no error, warning or informational issue
    assert result.returncode == 0, result.stdout + result.stderr


def test_cfn_lint_suppressions_carry_a_reason() -> None:
    text = TEMPLATE.read_text()
    for match in re.finditer(r"^(\s*)(cfn-lint|IgnoreChecks|ignore_checks)\b.*$", text, re.MULTILINE):
        preceding = text[: match.start()].rstrip().splitlines()[-1].strip()
        assert preceding.startswith("#"), f"suppression without a reason comment above it: {match.group(0)}"


def test_translator_produces_the_layer_functions_and_schedules(transformed: dict[str, Any]) -> None:
    functions = resources_of_type(transformed, "AWS::Lambda::Function")
    assert set(functions) == {"CollectSqsFunction", "CollectCloudWatchFunction"}
    for function in functions.values():
        properties = function["Properties"]
        assert properties["Runtime"] == "python3.12"
        assert properties["Architectures"] == ["arm64"]
        assert properties["TracingConfig"] == {"Mode": {"Ref": "CollectorTracing"}}
        assert properties["Handler"] == "app.lambda_handler"
        assert set(properties["VpcConfig"]) == {"SubnetIds", "SecurityGroupIds"}
        layer_refs = [layer["Ref"] for layer in properties["Layers"]]
        assert len(layer_refs) == 1
        assert transformed["Resources"][layer_refs[0]]["Type"] == "AWS::Lambda::LayerVersion"

    schedules = {
        name: rule
        for name, rule in resources_of_type(transformed, "AWS::Events::Rule").items()
        if "ScheduleExpression" in rule["Properties"]
    }
    targets = {}
    for rule in schedules.values():
        assert rule["Properties"]["ScheduleExpression"] == "rate(1 minute)"
        (target,) = rule["Properties"]["Targets"]
        assert target["RetryPolicy"]["MaximumRetryAttempts"] >= 1
        assert target["DeadLetterConfig"]["Arn"] == {"Fn::GetAtt": ["EventDeliveryDeadLetterQueue", "Arn"]}
        targets[target["Arn"]["Fn::GetAtt"][0]] = rule
    assert set(targets) == set(functions), "one one-minute schedule per function"


def test_tracing_is_off_unless_the_parameter_turns_it_on(transformed: dict[str, Any]) -> None:
    # GIVEN the tracing parameter: off by default (an X-Ray SDK import costs ~100 ms of every cold start)
    parameter = load_template()["Parameters"]["CollectorTracing"]
    assert parameter["Default"] == "PassThrough"
    assert set(parameter["AllowedValues"]) == {"Active", "PassThrough"}
    # THEN each function tells Powertools the same thing X-Ray is told, so the handler builds a Tracer
    # exactly when Lambda traces it
    assert transformed["Conditions"]["TracingActive"] == {
        "Fn::Equals": [{"Ref": "CollectorTracing"}, "Active"]
    }
    for function in resources_of_type(transformed, "AWS::Lambda::Function").values():
        variables = function["Properties"]["Environment"]["Variables"]
        assert variables["POWERTOOLS_TRACE_DISABLED"] == {"Fn::If": ["TracingActive", "false", "true"]}


def test_layer_is_built_from_shared_with_python312() -> None:
    (layer,) = resources_of_type(load_template(), "AWS::Serverless::LayerVersion").values()
    assert layer["Properties"]["ContentUri"] == "shared/"
    assert layer["Metadata"]["BuildMethod"] == "python3.12"
    assert layer["Metadata"]["BuildArchitecture"] == "arm64"
    assert (ROOT / "shared" / "requirements.txt").is_file()


def test_functions_carry_powertools_and_tidegauge_environment(transformed: dict[str, Any]) -> None:
    services = {"CollectSqsFunction": "collect_sqs", "CollectCloudWatchFunction": "collect_cloudwatch"}
    for name, function in resources_of_type(transformed, "AWS::Lambda::Function").items():
        variables = function["Properties"]["Environment"]["Variables"]
        assert variables["POWERTOOLS_SERVICE_NAME"] == services[name]
        assert variables["POWERTOOLS_METRICS_NAMESPACE"] == "tidegauge"
        assert variables["LOG_LEVEL"] == {"Ref": "LogLevel"}
        assert variables["TIDEGAUGE_CONFIG_PARAMETER"] == {"Ref": "ConfigParameterName"}
        assert {"TIDEGAUGE_REDIS_URL", "TIDEGAUGE_REDIS_SECRET"} <= set(variables)


def test_event_rule_targets_both_functions_on_collect_events_and_alarms(transformed: dict[str, Any]) -> None:
    rule = transformed["Resources"]["CollectOnEventRule"]["Properties"]
    custom, alarm = rule["EventPattern"]["$or"]
    assert custom == {"source": ["tidegauge"], "detail-type": ["tidegauge.collect"]}
    assert alarm["source"] == ["aws.cloudwatch"]
    assert alarm["detail-type"] == ["CloudWatch Alarm State Change"]
    for detail in branches(alarm["detail"]):
        assert detail["state"] == {"value": ["ALARM"]}
    target_functions = {target["Arn"]["Fn::GetAtt"][0] for target in rule["Targets"]}
    assert target_functions == {"CollectSqsFunction", "CollectCloudWatchFunction"}
    for target in rule["Targets"]:
        assert "DeadLetterConfig" in target
        assert "RetryPolicy" in target
    permissions = resources_of_type(transformed, "AWS::Lambda::Permission").values()
    allowed = {
        p["Properties"]["FunctionName"]["Ref"]
        for p in permissions
        if p["Properties"].get("SourceArn") == {"Fn::GetAtt": ["CollectOnEventRule", "Arn"]}
    }
    assert allowed == target_functions


def test_iam_grants_only_the_listed_actions(transformed: dict[str, Any]) -> None:
    for name, role in function_roles(transformed).items():
        for statement in statements(role):
            assert statement["Effect"] == "Allow"
            assert "NotAction" not in statement
            assert "NotResource" not in statement
            actions = as_list(statement["Action"])
            assert not [a for a in actions if "*" in a], f"{name}: wildcard action in {statement}"
            assert set(actions) <= ALLOWED_ACTIONS, (
                f"{name}: unexpected actions {set(actions) - ALLOWED_ACTIONS}"
            )
            for resource in branches(statement["Resource"]):
                if resource == "*":
                    assert set(actions) <= ACTIONS_ON_ANY_RESOURCE, f"{name}: {actions} on every resource"
        managed = {arn.split(":policy/", 1)[1] for arn in role["Properties"]["ManagedPolicyArns"]}
        # SAM's policy for an SQS event source: receive and delete on the tick queue (SQS collector)
        expected = EXPECTED_MANAGED_POLICIES | (
            {"service-role/AWSLambdaSQSQueueExecutionRole"} if name == "CollectSqsFunction" else set()
        )
        assert managed == expected, f"{name}: managed policies {managed}"


def test_each_collector_gets_only_its_source_permissions(transformed: dict[str, Any]) -> None:
    granted = {
        name: {action for s in statements(role) for action in as_list(s["Action"])}
        for name, role in function_roles(transformed).items()
    }
    common = {"ssm:GetParameter", "secretsmanager:GetSecretValue", "sts:AssumeRole", "sqs:SendMessage"}
    assert granted["CollectSqsFunction"] == common | {
        "sqs:GetQueueAttributes",
        "sqs:ListQueueTags",
        "sqs:GetQueueUrl",
        "sqs:ListQueues",
    }
    assert granted["CollectCloudWatchFunction"] == common | {"cloudwatch:GetMetricData"}


def test_queue_reads_are_limited_to_the_queue_arn_pattern(transformed: dict[str, Any]) -> None:
    role = function_roles(transformed)["CollectSqsFunction"]
    (statement,) = [s for s in statements(role) if "sqs:GetQueueAttributes" in as_list(s["Action"])]
    resources = list(branches(statement["Resource"]))
    assert {"Ref": "QueueArnPattern"} in resources
    assert {"Fn::Sub": "arn:${AWS::Partition}:sqs:${AWS::Region}:${AWS::AccountId}:*"} in resources


def test_send_message_only_reaches_the_failure_queue_and_the_own_tick_queue(
    transformed: dict[str, Any],
) -> None:
    failure_queue = {"Fn::GetAtt": ["InvocationFailureQueue", "Arn"]}
    tick_queue = {"Fn::GetAtt": ["CollectSqsTickQueue", "Arn"]}
    for name, role in function_roles(transformed).items():
        targets = [
            statement["Resource"]
            for statement in statements(role)
            if "sqs:SendMessage" in as_list(statement["Action"])
        ]
        own = [failure_queue, tick_queue] if name == "CollectSqsFunction" else [failure_queue]
        assert sorted(map(str, targets)) == sorted(map(str, own)), f"{name}: SendMessage to {targets}"


def test_sqs_collector_samples_sub_minute_by_a_tick_chain(transformed: dict[str, Any]) -> None:
    # GIVEN the SQS collector and its tick queue
    function = transformed["Resources"]["CollectSqsFunction"]["Properties"]
    queue = transformed["Resources"]["CollectSqsTickQueue"]["Properties"]
    mappings = resources_of_type(transformed, "AWS::Lambda::EventSourceMapping")
    # THEN one mapping delivers one tick at a time from that queue to that function only
    (mapping,) = mappings.values()
    assert mapping["Properties"]["EventSourceArn"] == {"Fn::GetAtt": ["CollectSqsTickQueue", "Arn"]}
    assert mapping["Properties"]["FunctionName"] == {"Ref": "CollectSqsFunction"}
    assert mapping["Properties"]["BatchSize"] == 1
    # AND the mapping's concurrency fits in the reserved concurrency's default
    reserved = int(load_template()["Parameters"]["CollectorReservedConcurrency"]["Default"])
    assert mapping["Properties"]["ScalingConfig"]["MaximumConcurrency"] < reserved
    # AND the function knows where to send the next tick
    assert function["Environment"]["Variables"]["TIDEGAUGE_TICK_QUEUE_URL"] == {"Ref": "CollectSqsTickQueue"}
    # AND the queue suits Lambda (visibility >= timeout) and drops a stale tick within a minute
    assert queue["VisibilityTimeout"] >= function["Timeout"]
    assert queue["MessageRetentionPeriod"] == 60


def test_assume_role_is_granted_only_with_role_arns(transformed: dict[str, Any]) -> None:
    for role in function_roles(transformed).values():
        for policy in role["Properties"]["Policies"]:
            actions = {a for s in _document_statements(policy) for a in as_list(s["Action"])}
            if "sts:AssumeRole" in actions:
                assert policy["Fn::If"][0] == "HasAssumeRoles"
                assert policy["Fn::If"][2] == {"Ref": "AWS::NoValue"}
    conditions = transformed["Conditions"]
    assert conditions["HasAssumeRoles"] == {
        "Fn::Not": [{"Fn::Equals": [{"Fn::Join": ["", {"Ref": "AssumeRoleArns"}]}, ""]}]
    }


def _document_statements(policy: dict[str, Any]) -> list[dict[str, Any]]:
    return [s for concrete in branches(policy) for s in concrete["PolicyDocument"]["Statement"]]


def test_async_failures_go_to_the_failure_queue(transformed: dict[str, Any]) -> None:
    configs = resources_of_type(transformed, "AWS::Lambda::EventInvokeConfig")
    assert {c["Properties"]["FunctionName"]["Ref"] for c in configs.values()} == {
        "CollectSqsFunction",
        "CollectCloudWatchFunction",
    }
    for config in configs.values():
        destination = config["Properties"]["DestinationConfig"]["OnFailure"]["Destination"]
        assert destination == {"Fn::GetAtt": ["InvocationFailureQueue", "Arn"]}


def test_dead_letter_queue_admits_only_this_stacks_rules(transformed: dict[str, Any]) -> None:
    policy = transformed["Resources"]["EventDeliveryDeadLetterQueuePolicy"]["Properties"]["PolicyDocument"]
    (statement,) = policy["Statement"]
    sources = statement["Condition"]["ArnEquals"]["aws:SourceArn"]
    rule_names = {s["Fn::GetAtt"][0] for s in sources}
    assert rule_names == set(resources_of_type(transformed, "AWS::Events::Rule"))


def test_alarms_cover_errors_throttles_and_staleness(transformed: dict[str, Any]) -> None:
    alarms = resources_of_type(transformed, "AWS::CloudWatch::Alarm").values()
    by_metric: dict[tuple[str, str], list[dict[str, Any]]] = {}
    for alarm in alarms:
        properties = alarm["Properties"]
        if "MetricName" in properties:
            by_metric.setdefault((properties["Namespace"], properties["MetricName"]), []).append(properties)
    for metric in ("Errors", "Throttles"):
        functions = {p["Dimensions"][0]["Value"]["Ref"] for p in by_metric[("AWS/Lambda", metric)]}
        assert functions == {"CollectSqsFunction", "CollectCloudWatchFunction"}
    for service in ("collect_sqs", "collect_cloudwatch"):
        (errors,) = [
            p
            for p in by_metric[("tidegauge", "CollectionErrors")]
            if p["Dimensions"] == [{"Name": "service", "Value": service}]
        ]
        assert errors["ComparisonOperator"] == "GreaterThanThreshold"
        assert errors["Threshold"] == 0
        (age,) = [
            p
            for p in by_metric[("tidegauge", "NewestSampleAgeSeconds")]
            if p["Dimensions"] == [{"Name": "service", "Value": service}]
        ]
        assert age["Statistic"] == "Maximum"


def _no_samples_alarm(transformed: dict[str, Any], service: str) -> dict[str, Any]:
    (alarm,) = [
        a["Properties"]
        for a in resources_of_type(transformed, "AWS::CloudWatch::Alarm").values()
        if a["Properties"]["AlarmName"] == {"Fn::Sub": f"tidegauge-${{EnvironmentName}}-{service}-no-samples"}
    ]
    return cast(dict[str, Any], alarm)


@pytest.mark.parametrize("service", ["collect_sqs", "collect_cloudwatch"])
def test_no_samples_alarm_counts_samples_or_the_idle_heartbeat(
    service: str, transformed: dict[str, Any]
) -> None:
    # GIVEN the no-samples alarm of one collector
    alarm = _no_samples_alarm(transformed, service)
    # THEN it sums, over 5 minutes, the samples written and the heartbeats of a function with nothing
    # configured, both of this function only, and alarms below 1 or without any data
    inputs = {m["Id"]: m["MetricStat"] for m in alarm["Metrics"] if "MetricStat" in m}
    names = {stat["Metric"]["MetricName"]: stat for stat in inputs.values()}
    assert set(names) == {"SamplesWritten", IDLE_HEARTBEAT_METRIC}
    for stat in names.values():
        assert stat["Metric"]["Namespace"] == "tidegauge"
        assert stat["Metric"]["Dimensions"] == [{"Name": "service", "Value": service}]
        assert (stat["Stat"], stat["Period"]) == ("Sum", 300)
    (expression,) = [m for m in alarm["Metrics"] if "Expression" in m]
    assert expression["ReturnData"] is True
    assert sorted(re.findall(r"FILL\((\w+), 0\)", expression["Expression"])) == sorted(inputs)
    assert "+" in expression["Expression"]
    assert alarm["ComparisonOperator"] == "LessThanThreshold"
    assert alarm["Threshold"] == 1
    assert alarm["TreatMissingData"] == "breaching"


def test_sample_age_alarms_have_a_threshold_per_kind(transformed: dict[str, Any]) -> None:
    # GIVEN the two sample-age alarms and the template's parameters
    parameters = load_template()["Parameters"]
    thresholds = {
        a["Properties"]["Dimensions"][0]["Value"]: a["Properties"]["Threshold"]
        for a in resources_of_type(transformed, "AWS::CloudWatch::Alarm").values()
        if a["Properties"].get("MetricName") == "NewestSampleAgeSeconds"
    }
    # THEN SQS and CloudWatch samples are judged by their own parameter
    assert thresholds == {
        "collect_sqs": {"Ref": "SqsStalenessThresholdSeconds"},
        "collect_cloudwatch": {"Ref": "CloudWatchStalenessThresholdSeconds"},
    }
    assert "StalenessThresholdSeconds" not in parameters
    # AND the CloudWatch default allows a 60-second datapoint its period and publishing delay
    # (2 x period + 120 s), which the SQS default (a live reading) does not need
    assert parameters["SqsStalenessThresholdSeconds"]["Default"] == 180
    assert parameters["CloudWatchStalenessThresholdSeconds"]["Default"] >= 2 * 60 + 120
    assert parameters["CloudWatchStalenessThresholdSeconds"]["Default"] > 180


def test_failed_or_late_invocations_are_not_retried(transformed: dict[str, Any]) -> None:
    # GIVEN the asynchronous invocation settings of both functions
    configs = resources_of_type(transformed, "AWS::Lambda::EventInvokeConfig").values()
    assert len(configs) == 2
    for config in configs:
        properties = config["Properties"]
        # THEN a failed collection is not run again beside the next tick, and an event throttled for
        # more than a minute is dropped (to the failure queue) rather than run late
        assert properties["MaximumRetryAttempts"] == 0
        assert properties["MaximumEventAgeInSeconds"] <= 60


def test_collectors_run_with_a_small_reserved_concurrency(transformed: dict[str, Any]) -> None:
    # GIVEN the concurrency parameter and both functions
    parameter = load_template()["Parameters"]["CollectorReservedConcurrency"]
    # THEN each function reserves it (an empty value reserves nothing), and the default is small
    for function in resources_of_type(transformed, "AWS::Lambda::Function").values():
        assert function["Properties"]["ReservedConcurrentExecutions"] == {
            "Fn::If": [
                "HasReservedConcurrency",
                {"Ref": "CollectorReservedConcurrency"},
                {"Ref": "AWS::NoValue"},
            ]
        }
    assert transformed["Conditions"]["HasReservedConcurrency"] == {
        "Fn::Not": [{"Fn::Equals": [{"Ref": "CollectorReservedConcurrency"}, ""]}]
    }
    assert 2 <= int(parameter["Default"]) <= 5
    pattern = re.compile(parameter["AllowedPattern"])
    assert pattern.match("")
    assert pattern.match("3")
    assert not pattern.match("0"), "0 would stop the collectors altogether"


def test_cache_user_accepts_a_second_password_only_during_a_rotation(transformed: dict[str, Any]) -> None:
    # GIVEN the created cache user and the rotation parameter
    parameter = load_template()["Parameters"]["CacheSecondPasswordStage"]
    passwords = transformed["Resources"]["CacheUser"]["Properties"]["AuthenticationMode"]["Passwords"]
    condition, rotating, normal = passwords["Fn::If"]
    current = {"Fn::Sub": "{{resolve:secretsmanager:${RedisAuthSecret}:SecretString}}"}
    # THEN normally only the secret's current version is accepted
    assert condition == "CacheHasSecondPassword"
    assert normal == [current]
    # AND during a rotation also the version the parameter's staging label names (two at most)
    second = "{{resolve:secretsmanager:${RedisAuthSecret}:SecretString::${CacheSecondPasswordStage}}}"
    assert rotating == [current, {"Fn::Sub": second}]
    assert parameter["Default"] == ""
    assert set(parameter["AllowedValues"]) == {"", "AWSPENDING", "AWSPREVIOUS"}
    assert transformed["Conditions"]["CacheHasSecondPassword"] == {
        "Fn::Not": [{"Fn::Equals": [{"Ref": "CacheSecondPasswordStage"}, ""]}]
    }


def test_cache_is_created_only_without_a_redis_url() -> None:
    template = load_template()
    cache_types = {
        "AWS::ElastiCache::ServerlessCache",
        "AWS::ElastiCache::User",
        "AWS::ElastiCache::UserGroup",
        "AWS::SecretsManager::Secret",
        "AWS::EC2::SecurityGroup",
    }
    for name, resource in template["Resources"].items():
        if resource["Type"] in cache_types:
            assert resource.get("Condition") == "CreateCache", f"{name} must depend on CreateCache"
    assert template["Conditions"]["CreateCache"] == {"Fn::Equals": [{"Ref": "RedisUrl"}, ""]}
    (cache,) = resources_of_type(template, "AWS::ElastiCache::ServerlessCache").values()
    assert cache["Properties"]["Engine"] == "valkey"
    assert cache["Properties"]["UserGroupId"] == {"Ref": "CacheUserGroup"}
    url = template["Globals"]["Function"]["Environment"]["Variables"]["TIDEGAUGE_REDIS_URL"]
    created, existing = url["Fn::If"][1:]
    assert created["Fn::Sub"].startswith("rediss://"), "ElastiCache Serverless only accepts TLS"
    assert existing == {"Ref": "RedisUrl"}


def test_outputs_cover_what_the_cluster_side_needs() -> None:
    outputs = load_template()["Outputs"]
    needed = {
        "SharedLayerArn",
        "CollectSqsFunctionArn",
        "CollectCloudWatchFunctionArn",
        "CollectSqsFunctionRoleArn",
        "CollectCloudWatchFunctionRoleArn",
        "CollectOnEventRuleArn",
        "InvocationFailureQueueArn",
        "EventDeliveryDeadLetterQueueArn",
        "ConfigParameterName",
        "RedisUrl",
        "RedisSecretArn",
        "CacheSecurityGroupId",
    }
    assert needed <= set(outputs)


def test_every_arn_of_the_stack_is_an_output(transformed: dict[str, Any]) -> None:
    outputs = transformed["Outputs"]
    exported = {
        str(output["Value"].get("Fn::GetAtt", output["Value"].get("Ref", "")))
        for output in outputs.values()
        if isinstance(output["Value"], dict)
    }
    kinds_with_arns = {
        "AWS::Lambda::Function",
        "AWS::Events::Rule",
        "AWS::SQS::Queue",
        "AWS::CloudWatch::Alarm",
    }
    for name, resource in transformed["Resources"].items():
        if resource["Type"] in kinds_with_arns:
            assert str([name, "Arn"]) in exported, f"no output for the ARN of {name}"


def test_samconfig_has_default_dev_and_prod_environments() -> None:
    samconfig = tomllib.loads((ROOT / "samconfig.toml").read_text())
    parameters = set(load_template()["Parameters"])
    assert samconfig["version"] == 0.1
    stacks = set()
    for environment in ("default", "dev", "prod"):
        # sam merges the global section into every command's parameters
        deploy = (
            samconfig[environment].get("global", {}).get("parameters", {})
            | samconfig[environment]["deploy"]["parameters"]
        )
        stacks.add(deploy["stack_name"])
        assert "CAPABILITY_IAM" in as_list(deploy["capabilities"])
        overrides = [o.split("=", 1)[0] for o in as_list(deploy.get("parameter_overrides", []))]
        assert set(overrides) <= parameters, (
            f"{environment}: unknown parameters {set(overrides) - parameters}"
        )
    assert len(stacks) == 3, "each environment deploys its own stack"


def test_layer_requirements_are_pinned_within_the_project_ranges() -> None:
    # GIVEN the layer's requirements and the ranges pyproject.toml declares for the same packages
    pyproject = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    declared = [
        Requirement(r) for r in pyproject["dependencies"] + pyproject["optional-dependencies"]["lambda"]
    ]
    ranges = {r.name.lower(): r for r in declared}
    pinned = [
        Requirement(line)
        for line in (ROOT / "shared" / "requirements.txt").read_text().splitlines()
        if line.strip() and not line.lstrip().startswith("#")
    ]
    # THEN every line is an exact pin, and each pin fits its range
    names = {r.name.lower() for r in pinned}
    assert {"redis", "pyyaml", "aws-lambda-powertools"} <= names
    for requirement in pinned:
        (specifier,) = requirement.specifier
        assert specifier.operator == "==", f"{requirement} is not pinned with =="
        declared_range = ranges.get(requirement.name.lower())
        if declared_range is not None:
            assert declared_range.specifier.contains(specifier.version), f"{requirement} vs {declared_range}"
    powertools = next(r for r in pinned if r.name.lower() == "aws-lambda-powertools")
    assert "tracer" in powertools.extras


def _layer_pins() -> dict[str, str]:
    pins: dict[str, str] = {}
    for line in (ROOT / "shared" / "requirements.txt").read_text().splitlines():
        if line.strip() and not line.lstrip().startswith("#"):
            requirement = Requirement(line)
            (specifier,) = requirement.specifier
            pins[canonicalize_name(requirement.name)] = specifier.version
    return pins


def _requirement_of(distribution: str, dependency: str) -> Requirement:
    """``distribution``'s (installed) requirement on ``dependency``, extras-only entries left out."""
    for line in metadata.requires(distribution) or []:
        requirement = Requirement(line)
        if canonicalize_name(requirement.name) == dependency and requirement.marker is None:
            return requirement
    raise AssertionError(f"{distribution} does not require {dependency}")


def test_layer_ships_a_boto3_botocore_s3transfer_set_that_boto3_supports() -> None:
    # GIVEN the layer's pins: botocore must be there (aws-xray-sdk requires it) and, coming before the
    # runtime on sys.path, it is the botocore every boto3 in the function uses
    pins = _layer_pins()
    assert {"boto3", "botocore", "s3transfer"} <= set(pins), "pin boto3 and s3transfer beside botocore"
    # AND the metadata of exactly those versions, from the test environment (offline)
    for name in ("boto3", "botocore", "s3transfer"):
        installed = metadata.version(name)
        assert installed == pins[name], f"the test environment has {name} {installed}"
    # THEN boto3 accepts the pinned botocore and s3transfer, s3transfer and aws-xray-sdk the botocore
    for distribution, dependency in (
        ("boto3", "botocore"),
        ("boto3", "s3transfer"),
        ("boto3", "jmespath"),
        ("s3transfer", "botocore"),
        ("aws-xray-sdk", "botocore"),
    ):
        requirement = _requirement_of(distribution, dependency)
        assert requirement.specifier.contains(pins[dependency]), (
            f"{distribution} {pins.get(distribution, '')} requires {requirement}, "
            f"the layer pins {dependency}=={pins[dependency]}"
        )


def _operations(protocol: type) -> set[str]:
    """boto3 method names of a client Protocol as IAM action names: get_queue_url -> GetQueueUrl."""
    methods = [name for name in vars(protocol) if not name.startswith("_")]
    return {"".join(part.title() for part in name.split("_")) for name in methods}


@pytest.mark.parametrize(
    ("function_name", "protocol_path", "service"),
    [
        ("CollectSqsFunction", "tidegauge.sources.sqs:SqsClient", "sqs"),
        ("CollectSqsFunction", "tidegauge.sources.ticks:TickQueue", "sqs"),
        ("CollectCloudWatchFunction", "tidegauge.sources.cloudwatch:CloudWatchClient", "cloudwatch"),
        ("CollectSqsFunction", "tidegauge.sources.aws:StsClient", "sts"),
        ("CollectCloudWatchFunction", "tidegauge.sources.aws:StsClient", "sts"),
    ],
)
def test_iam_grants_every_operation_the_collectors_call(
    function_name: str, protocol_path: str, service: str, transformed: dict[str, Any]
) -> None:
    # GIVEN the client Protocol a collector is written against (the AWS calls it can make)
    module_name, class_name = protocol_path.split(":")
    protocol = getattr(importlib.import_module(module_name), class_name)
    # THEN the function's role allows each of them (GetCallerIdentity needs no permission)
    role = function_roles(transformed)[function_name]
    granted = {action for s in statements(role) for action in as_list(s["Action"])}
    needed = {f"{service}:{operation}" for operation in _operations(protocol)} - {"sts:GetCallerIdentity"}
    assert needed <= granted, f"{function_name} lacks {needed - granted}"


# Calls made through Powertools' providers, not through a client Protocol of the collectors.
PROVIDER_CALLS = {"ssm": {"GetParameter"}, "secretsmanager": {"GetSecretValue"}}
CLIENT_PROTOCOLS = {
    "sqs": ("tidegauge.sources.sqs:SqsClient", "tidegauge.sources.ticks:TickQueue"),
    "cloudwatch": ("tidegauge.sources.cloudwatch:CloudWatchClient",),
    "sts": ("tidegauge.sources.aws:StsClient",),
}


def _readme_endpoint_table() -> dict[str, set[str]]:
    """The README's no-NAT endpoint table: endpoint service -> the calls its row names (template
    parameter names, also in backticks there, left out)."""
    parameters = set(load_template()["Parameters"])
    readme = (ROOT / "README.md").read_text()
    section = readme.split("### 3. Network without a NAT gateway", 1)[1].split("\n### ", 1)[0]
    rows = {}
    for line in section.splitlines():
        match = re.match(r"\| `com\.amazonaws\.<region>\.([a-z0-9-]+)` \|(.*)\|(.*)\|$", line)
        if match:
            rows[match.group(1)] = set(re.findall(r"`([A-Z][A-Za-z]+)`", match.group(3))) - parameters
    return rows


def test_readme_endpoint_table_names_every_call_of_every_collector_client() -> None:
    # GIVEN every boto3 client the Lambda side of the collectors creates (the CLI's own are left out)
    sources = ROOT / "shared" / "tidegauge" / "sources"
    created = {
        service
        for path in sources.glob("*.py")
        if path.name != "command.py"
        for service in re.findall(r'\.client\(\s*"([a-z0-9-]+)"', path.read_text())
    }
    assert created == set(PROVIDER_CALLS) | set(CLIENT_PROTOCOLS)
    # AND what each can call: its Protocol's methods, or the provider's one call
    expected = {}
    for service in created:
        if service in CLIENT_PROTOCOLS:
            calls = set()
            for path in CLIENT_PROTOCOLS[service]:
                module_name, class_name = path.split(":")
                calls |= _operations(getattr(importlib.import_module(module_name), class_name))
        else:
            calls = PROVIDER_CALLS[service]
        endpoint = botocore.session.get_session().get_service_model(service).endpoint_prefix
        expected[endpoint] = calls
    # THEN the README lists exactly those endpoint services, each with exactly those calls
    assert _readme_endpoint_table() == expected
