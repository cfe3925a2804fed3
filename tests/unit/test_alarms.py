"""The alarms, their topic and the dashboard as CloudFormation receives them (after the SAM transform): every
function, queue, rule, the API stage, the pipeline and the endpoint is watched, with metrics and dimensions that
exist for its kind of resource, and every alarm reaches the topic that notify posts to Slack."""

from __future__ import annotations

import json
import re
from typing import Any

from local.template import local_values
from sam_stack.template import Template
from tests.conftest import REPO
from tests.unit.test_translated_template import TEMPLATE, resources, translation

STACK_NAME = {"Ref": "AWS::StackName"}
# Namespace -> metric -> the dimensions that identify one resource of the kind, from AWS's documentation: Lambda
# "Types of metrics for Lambda functions", EventBridge "Monitoring Amazon EventBridge" (RuleName), SQS "Available
# CloudWatch metrics for Amazon SQS", API Gateway "Amazon API Gateway dimensions and metrics" (ApiName, Stage),
# SageMaker "Metrics for monitoring SageMaker Pipelines" and "SageMaker AI endpoint invocation metrics" / "instance
# metrics"; the product's own namespace is Powertools' (Globals), with its `service` dimension
FUNCTION, RULE, QUEUE = {"FunctionName"}, {"RuleName"}, {"QueueName"}
STAGE, PIPELINE, VARIANT = {"ApiName", "Stage"}, {"PipelineName"}, {"EndpointName", "VariantName"}
METRICS: dict[str, dict[str, set[str]]] = {
    "AWS/Lambda": {"Errors": FUNCTION, "Throttles": FUNCTION, "Duration": FUNCTION, "DeadLetterErrors": FUNCTION},
    "AWS/Events": {"FailedInvocations": RULE, "InvocationsFailedToBeSentToDLQ": RULE},
    "AWS/SQS": {"ApproximateNumberOfMessagesVisible": QUEUE, "ApproximateAgeOfOldestMessage": QUEUE},
    "AWS/ApiGateway": {"5XXError": STAGE, "Latency": STAGE},
    "AWS/Sagemaker/ModelBuildingPipeline": {"ExecutionFailed": PIPELINE, "ExecutionSucceeded": PIPELINE},
    "AWS/SageMaker": {"Invocation5XXErrors": VARIANT, "Invocation4XXErrors": VARIANT, "ModelLatency": VARIANT},
    "/aws/sagemaker/Endpoints": {"CPUUtilization": VARIANT, "MemoryUtilization": VARIANT},
    "ScratchDetector": {"InvalidConfigs": {"service"}, "DeploymentSyncFailures": {"service"}},
}
METRICS["ScratchDetector"]["SlackDecisionsFailed"] = {"service"}


def alarms() -> dict[str, dict[str, Any]]:
    return {name: a["Properties"] for name, a in resources(TEMPLATE, "AWS::CloudWatch::Alarm").items()}


def dimensions(alarm: dict[str, Any]) -> dict[str, Any]:
    return {d["Name"]: d["Value"] for d in alarm["Dimensions"]}


def watching(namespace: str, metric: str, **dims: Any) -> list[dict[str, Any]]:
    """The alarms on `metric` whose dimensions include `dims`."""
    return [
        a
        for a in alarms().values()
        if (a["Namespace"], a["MetricName"]) == (namespace, metric)
        and all(dimensions(a).get(k) == v for k, v in dims.items())
    ]


def test_every_alarm_watches_a_metric_that_exists_with_the_dimensions_of_its_kind_of_resource() -> None:
    assert len(alarms()) >= 40
    for name, alarm in alarms().items():
        namespace, metric = alarm["Namespace"], alarm["MetricName"]
        assert metric in METRICS.get(namespace, {}), (name, namespace, metric)
        assert set(dimensions(alarm)) == METRICS[namespace][metric], name
        # one statistic: Statistic or a percentile, never both
        assert ("Statistic" in alarm) != ("ExtendedStatistic" in alarm), name
        # PutMetricAlarm's limits (botocore's CloudWatch model): a period of 10, 30 or a multiple of 60 s; periods
        # times evaluation periods at most seven days, and one day for periods under an hour
        for period in periods(alarm["Period"]):
            assert period in {10, 30} or period % 60 == 0, name
            assert period * alarm["EvaluationPeriods"] <= (604_800 if period >= 3600 else 86_400), name


def periods(value: Any) -> list[int]:
    """An alarm's period, or each value its parameter allows."""
    if isinstance(value, dict):
        parameter = translation()["templates"][TEMPLATE]["Parameters"][value["Ref"]]
        return [int(v) for v in parameter["AllowedValues"]]
    return [int(value)]


def test_every_alarm_sends_to_the_alarm_topic_and_is_named_so_that_the_topic_lets_it_publish() -> None:
    for name, alarm in alarms().items():
        assert alarm["AlarmActions"] == [{"Ref": "AlarmTopic"}], name
        assert alarm.get("OKActions", [{"Ref": "AlarmTopic"}]) == [{"Ref": "AlarmTopic"}], name
        assert alarm["AlarmName"]["Fn::Sub"].startswith("${AWS::StackName}-"), name
        assert alarm["TreatMissingData"] in {"notBreaching", "breaching"}, name


def test_every_function_has_its_error_and_throttle_alarms_and_an_asynchronous_one_its_dead_letter_alarm() -> None:
    functions = resources(TEMPLATE, "AWS::Lambda::Function")
    assert len(functions) == 7
    for name, function in functions.items():
        ref = {"Ref": name}
        assert watching("AWS/Lambda", "Errors", FunctionName=ref), name
        assert watching("AWS/Lambda", "Throttles", FunctionName=ref), name
        if "DeadLetterConfig" in function["Properties"]:
            assert watching("AWS/Lambda", "DeadLetterErrors", FunctionName=ref), name
    # the click handler answers Slack, which waits 3 s: its p99 is watched below that
    [duration] = watching("AWS/Lambda", "Duration", FunctionName={"Ref": "SlackActionsFunction"})
    assert duration["ExtendedStatistic"] == "p99"
    assert duration["Threshold"] < functions["SlackActionsFunction"]["Properties"]["Timeout"] * 1000


def test_every_rule_and_queue_has_its_alarms() -> None:
    rules = resources(TEMPLATE, "AWS::Events::Rule")
    assert rules
    for name in rules:
        assert watching("AWS/Events", "FailedInvocations", RuleName={"Ref": name}), name
        assert watching("AWS/Events", "InvocationsFailedToBeSentToDLQ", RuleName={"Ref": name}), name
    queues = resources(TEMPLATE, "AWS::SQS::Queue")
    for name in queues:
        assert any(dimensions(a).get("QueueName") == {"Fn::GetAtt": [name, "QueueName"]} for a in alarms().values())
    [dead] = watching(
        "AWS/SQS", "ApproximateNumberOfMessagesVisible", QueueName={"Fn::GetAtt": ["DeadLetterQueue", "QueueName"]}
    )
    assert (dead["ComparisonOperator"], dead["Threshold"]) == ("GreaterThanThreshold", 0)
    assert watching(
        "AWS/SQS", "ApproximateAgeOfOldestMessage", QueueName={"Fn::GetAtt": ["DecisionQueue", "QueueName"]}
    )


def test_the_api_stage_is_watched_by_the_names_api_gateway_reports_it_under() -> None:
    (api,) = resources(TEMPLATE, "AWS::ApiGateway::RestApi").values()
    (stage,) = resources(TEMPLATE, "AWS::ApiGateway::Stage").values()
    # API Gateway's ApiName is the REST API's name, which SAM takes from the OpenAPI title
    named = {"ApiName": api["Properties"]["Body"]["info"]["title"], "Stage": stage["Properties"]["StageName"]}
    assert named == {"ApiName": STACK_NAME, "Stage": {"Ref": "Environment"}}
    assert watching("AWS/ApiGateway", "5XXError", **named)
    [latency] = watching("AWS/ApiGateway", "Latency", **named)
    assert latency["ExtendedStatistic"] == "p99"


def test_the_pipeline_and_the_endpoint_are_watched_under_the_stacks_name() -> None:
    template = translation()["templates"][TEMPLATE]
    assert template["Outputs"]["PipelineName"]["Value"] == STACK_NAME
    environment = template["Resources"]["ApiFunction"]["Properties"]["Environment"]["Variables"]
    assert environment["ENDPOINT_NAME"] == STACK_NAME
    assert watching("AWS/Sagemaker/ModelBuildingPipeline", "ExecutionFailed", PipelineName=STACK_NAME)
    # in prod, no success within the schedule's period is an alarm, and no data is no success
    [missing] = watching("AWS/Sagemaker/ModelBuildingPipeline", "ExecutionSucceeded", PipelineName=STACK_NAME)
    assert template["Resources"]["ScheduledRunMissingAlarm"]["Condition"] == "IsProd"
    assert (missing["ComparisonOperator"], missing["Threshold"], missing["TreatMissingData"]) == (
        "LessThanThreshold",
        1,
        "breaching",
    )
    # the endpoint may not exist yet: its alarms wait quietly (AllTraffic: control_plane.aws.hosting's variant)
    hosting = (REPO / "layers/common/control_plane/aws/hosting.py").read_text()
    assert '"VariantName": "AllTraffic"' in hosting
    for namespace, metrics in [
        ("AWS/SageMaker", METRICS["AWS/SageMaker"]),
        ("/aws/sagemaker/Endpoints", METRICS["/aws/sagemaker/Endpoints"]),
    ]:
        for metric in metrics:
            [alarm] = watching(namespace, metric, EndpointName=STACK_NAME, VariantName="AllTraffic")
            assert alarm["TreatMissingData"] == "notBreaching", metric


def test_the_products_own_metrics_are_watched_in_the_namespace_and_service_the_functions_emit_them_under() -> None:
    functions = resources(TEMPLATE, "AWS::Lambda::Function")
    variables = [f["Properties"]["Environment"]["Variables"] for f in functions.values()]
    namespace = {v["POWERTOOLS_METRICS_NAMESPACE"] for v in variables}
    assert namespace == {"ScratchDetector"}
    # the service is the stack's name: dev and prod in one account each publish, and alarm on, their own
    assert all(v["POWERTOOLS_SERVICE_NAME"] == STACK_NAME for v in variables)
    emitted = {
        m
        for path in (REPO / "functions").glob("*/app.py")
        for m in re.findall(r'add_metric\(name="(\w+)"', path.read_text())
    }
    for metric in ("InvalidConfigs", "DeploymentSyncFailures", "SlackDecisionsFailed"):
        assert metric in emitted
        assert watching("ScratchDetector", metric, service=STACK_NAME), metric


def test_cloudwatch_may_publish_to_the_encrypted_topic_only_for_the_stacks_alarms_and_notify_is_subscribed() -> None:
    # Given the topic, its policy, its key and its subscription
    template = translation()["templates"][TEMPLATE]["Resources"]
    topic = template["AlarmTopic"]["Properties"]
    # Then it is encrypted with a key of the stack (CloudWatch cannot use the AWS-managed alias/aws/sns)
    assert topic["KmsMasterKeyId"] == {"Ref": "AlarmTopicKey"}
    assert template["AlarmTopicKey"]["Type"] == "AWS::KMS::Key"
    # with the tag the deploy role may manage it by (rollout/github-oidc.yaml: keys have generated ids)
    assert {"Key": "scratch-detector:stack", "Value": STACK_NAME} in template["AlarmTopicKey"]["Properties"]["Tags"]
    own_alarms = {
        "Fn::Sub": "arn:${AWS::Partition}:cloudwatch:${AWS::Region}:${AWS::AccountId}:alarm:${AWS::StackName}-*"
    }
    [key_grant] = [
        s
        for s in template["AlarmTopicKey"]["Properties"]["KeyPolicy"]["Statement"]
        if s["Principal"] == {"Service": "cloudwatch.amazonaws.com"}
    ]
    assert set(key_grant["Action"]) == {"kms:Decrypt", "kms:GenerateDataKey*"}
    (policy,) = resources(TEMPLATE, "AWS::SNS::TopicPolicy").values()
    (publish,) = policy["Properties"]["PolicyDocument"]["Statement"]
    assert publish["Action"] == "sns:Publish"
    for statement in (key_grant, publish):
        assert statement["Condition"] == {
            "StringEquals": {"aws:SourceAccount": {"Ref": "AWS::AccountId"}},
            "ArnLike": {"aws:SourceArn": own_alarms},
        }
    # And notify, the one place that posts to people, is subscribed
    [subscription] = resources(TEMPLATE, "AWS::SNS::Subscription").values()
    assert subscription["Properties"] == {
        "Endpoint": {"Fn::GetAtt": ["NotifyFunction", "Arn"]},
        "Protocol": "lambda",
        "TopicArn": {"Ref": "AlarmTopic"},
    }


def test_the_dashboard_shows_every_metric_an_alarm_watches() -> None:
    (dashboard,) = resources(TEMPLATE, "AWS::CloudWatch::Dashboard").values()
    body = json.loads(re.sub(r"\$\{[^}]+\}", "x", dashboard["Properties"]["DashboardBody"]["Fn::Sub"]))
    shown = {(m[0], m[1]) for widget in body["widgets"] for m in widget["properties"]["metrics"]}
    watched = {(a["Namespace"], a["MetricName"]) for a in alarms().values()}
    assert watched <= shown, watched - shown


def test_two_stacks_in_one_account_emit_their_product_metrics_under_their_own_service() -> None:
    # Given the template resolved for two stack names, as CloudFormation resolves it for dev and prod
    template = Template.load()
    services = {
        template.environment("SyncDefinitionFunction", local_values({"AWS::StackName": name}))[
            "POWERTOOLS_SERVICE_NAME"
        ]
        for name in ("scratch-detector-dev", "scratch-detector-prod")
    }
    # Then each emits under its own name, which its alarms watch
    assert services == {"scratch-detector-dev", "scratch-detector-prod"}
