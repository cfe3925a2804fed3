"""The local executor's interpreter and the schedule clock, without any service."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest

from local.executor.expressions import ExpressionError, Scope, evaluate, references
from local.executor.records import dependencies, flatten
from local.executor.steps import holds, refusal, retry_wait
from local.schedules import ScheduleError, next_time
from pipeline_def import build_definition
from pipeline_def.config import PipelineConfig
from pipeline_def.definition import PREPROCESS_OUTPUTS


class Files:
    def load(self, step: str, name: str) -> Any:
        assert (step, name) == ("Evaluate", "EvaluationReport")
        return {"metrics": {"map": {"value": 0.42}}}


def scope() -> Scope:
    return Scope(
        parameters={"NumEpochs": 3, "MapThreshold": 0.3},
        execution={"PipelineExecutionId": "abc123", "PipelineExecutionArn": "arn:x/execution/abc123"},
        steps={
            "Preprocess": {
                "ProcessingOutputConfig": {
                    "Outputs": [
                        {"OutputName": "train", "S3Output": {"S3Uri": "s3://b/abc123/train"}},
                        {"OutputName": "test", "S3Output": {"S3Uri": "s3://b/abc123/test"}},
                    ]
                }
            }
        },
        files=Files(),
    )


def test_get_join_and_json_get_evaluate_as_sagemaker_does() -> None:
    value = {
        "a": {"Get": "Parameters.NumEpochs"},
        "b": {"Std:Join": {"On": "/", "Values": ["s3://b", {"Get": "Execution.PipelineExecutionId"}, "x"]}},
        "c": {"Get": "Steps.Preprocess.ProcessingOutputConfig.Outputs['test'].S3Output.S3Uri"},
        "d": {
            "Std:JsonGet": {
                "PropertyFile": {"Get": "Steps.Evaluate.PropertyFiles.EvaluationReport"},
                "Path": "metrics.map.value",
            }
        },
        "e": [{"Std:Join": {"On": "", "Values": [{"Get": "Parameters.NumEpochs"}]}}],
    }

    assert evaluate(value, scope()) == {
        "a": 3,
        "b": "s3://b/abc123/x",
        "c": "s3://b/abc123/test",
        "d": 0.42,
        "e": ["3"],
    }


@pytest.mark.parametrize(
    ("expression", "message"),
    [
        ({"Get": "Parameters.Nope"}, "no such parameter"),
        ({"Get": "Steps.Train.TrainingJobName"}, "step Train has not run"),
        ({"Get": "Steps.Preprocess.ProcessingOutputConfig.Outputs['nope'].S3Output.S3Uri"}, "no item named nope"),
        ({"Std:JsonGet": {"PropertyFile": "Steps.X.Files", "Path": "a"}}, "not a property file"),
    ],
)
def test_expressions_that_cannot_be_evaluated_say_why(expression: dict[str, Any], message: str) -> None:
    with pytest.raises(ExpressionError, match=message):
        evaluate(expression, scope())


def test_the_real_definition_has_the_designed_data_dependencies() -> None:
    steps = flatten(__import__("json").loads(build_definition(PipelineConfig.from_file())))

    graph = {name: sorted(dependencies(step)) for name, (step, _, _) in steps.items()}

    assert graph == {
        "Preprocess": [],
        "Train": ["Preprocess"],
        "Evaluate": ["Preprocess", "Train"],
        "CheckMap": ["Evaluate"],
        "Register": ["Evaluate", "Train"],
        "Fail": ["Evaluate"],
    }
    assert (steps["Register"][1], steps["Register"][2]) == ("CheckMap", True)
    assert (steps["Fail"][1], steps["Fail"][2]) == ("CheckMap", False)
    assert references({"x": [{"Get": "Steps.A.B"}, {"Get": "Parameters.C"}]}) == {"A"}


def resolved_jobs(**parameters: Any) -> dict[str, tuple[str, dict[str, Any]]]:
    """The real definition's job steps with their Arguments resolved as an execution resolves them."""
    definition = __import__("json").loads(build_definition(PipelineConfig.from_file()))
    defaults = {p["Name"]: p.get("DefaultValue") for p in definition["Parameters"]}
    given = scope()
    given.parameters = {**defaults, **parameters}
    outputs = [{"OutputName": n, "S3Output": {"S3Uri": f"s3://b/abc123/{n}"}} for n in PREPROCESS_OUTPUTS]
    given.steps["Preprocess"] = {"ProcessingOutputConfig": {"Outputs": outputs}}
    given.steps["Train"] = {"ModelArtifacts": {"S3ModelArtifacts": "s3://b/abc123/model.tar.gz"}}
    return {
        name: (step["Type"], evaluate(step["Arguments"], given))
        for name, (step, _, _) in flatten(definition).items()
        if step["Type"] in {"Processing", "Training"}
    }


def test_the_real_definitions_jobs_are_requests_sagemaker_accepts() -> None:
    jobs = resolved_jobs()

    assert sorted(jobs) == ["Evaluate", "Preprocess", "Train"]
    for name, (kind, arguments) in jobs.items():
        assert refusal("abc123", name, kind=kind, arguments=arguments) is None, name


def test_a_job_request_sagemaker_would_refuse_fails_its_step_naming_the_member() -> None:
    # an instance type the API does not have, given as a run's parameter
    kind, arguments = resolved_jobs(TrainingInstanceType="ml.m5.huge")["Train"]

    refused = refusal("abc123", "Train", kind=kind, arguments=arguments)

    assert refused is not None
    assert refused.startswith(
        "ClientError: An error occurred (ValidationException) when calling the CreateTrainingJob operation: "
    )
    assert "'ml.m5.huge' at 'ResourceConfig.InstanceType'" in refused
    assert "enum value set" in refused


@pytest.mark.parametrize(
    ("condition", "expected"),
    [
        ({"Type": "GreaterThanOrEqualTo", "LeftValue": 0.3, "RightValue": 0.3}, True),
        ({"Type": "GreaterThanOrEqualTo", "LeftValue": 0.29, "RightValue": 0.3}, False),
        ({"Type": "Not", "Expression": {"Type": "Equals", "LeftValue": 1, "RightValue": 1}}, False),
        (
            {
                "Type": "Or",
                "Conditions": [
                    {"Type": "LessThan", "LeftValue": 2, "RightValue": 1},
                    {"Type": "In", "QueryValue": "a", "Values": ["a"]},
                ],
            },
            True,
        ),
    ],
)
def test_conditions(condition: dict[str, Any], expected: bool) -> None:
    assert holds(condition) is expected


def test_retry_policies_retry_only_their_errors_and_back_off() -> None:
    policies = [
        {"ExceptionType": ["SageMaker.JOB_INTERNAL_ERROR"], "IntervalSeconds": 2, "BackoffRate": 3.0, "MaxAttempts": 3}
    ]

    assert [retry_wait(policies, "SageMaker.JOB_INTERNAL_ERROR", n) for n in (1, 2, 3)] == [2.0, 6.0, None]
    assert retry_wait(policies, "Step.THROTTLING", 1) is None


@pytest.mark.parametrize(
    ("expression", "after", "expected"),
    [
        ("rate(5 minutes)", datetime(2026, 11, 26, 10, 0, tzinfo=UTC), datetime(2026, 11, 26, 10, 5, tzinfo=UTC)),
        ("rate(1 day)", datetime(2026, 11, 26, 10, 0, tzinfo=UTC), datetime(2026, 11, 27, 10, 0, tzinfo=UTC)),
        # the template's default: Mondays at 03:00 UTC (2026-11-30 is a Monday)
        ("cron(0 3 ? * MON *)", datetime(2026, 11, 26, 10, 0, tzinfo=UTC), datetime(2026, 11, 30, 3, 0, tzinfo=UTC)),
        ("cron(*/15 * * * ? *)", datetime(2026, 11, 26, 10, 7, tzinfo=UTC), datetime(2026, 11, 26, 10, 15, tzinfo=UTC)),
        ("cron(0 8 1 JAN-MAR ? 2027)", datetime(2026, 11, 26, tzinfo=UTC), datetime(2027, 1, 1, 8, 0, tzinfo=UTC)),
    ],
)
def test_schedule_expressions(expression: str, after: datetime, expected: datetime) -> None:
    assert next_time(expression, after) == expected


@pytest.mark.parametrize("expression", ["cron(0 3 L * ? *)", "cron(0 3 * *)", "every monday", "cron(0 0 30 2 ? *)"])
def test_schedules_we_cannot_honour_are_refused(expression: str) -> None:
    with pytest.raises(ScheduleError):
        next_time(expression, datetime(2026, 11, 26, tzinfo=UTC))


def test_an_ended_training_job_reports_its_training_and_billable_seconds_as_sagemaker_does(tmp_path: Any) -> None:
    from local.executor.jobs import Job

    # Given a spot training job that ran 61.2 s, and one still running
    request = {"ResourceConfig": {"InstanceType": "ml.c5.4xlarge", "InstanceCount": 1, "VolumeSizeInGB": 30},
               "EnableManagedSpotTraining": True, "OutputDataConfig": {"S3OutputPath": "s3://b/out"}}  # fmt: skip
    started = datetime(2026, 12, 4, 10, 0, tzinfo=UTC)
    ended = datetime(2026, 12, 4, 10, 1, 1, 200_000, tzinfo=UTC)
    job = Job(kind="training", name="t", arn="arn:t", request=request, folder=tmp_path, status="Completed",
              started=started, ended=ended)  # fmt: skip
    running = Job(kind="training", name="r", arn="arn:r", request=request, folder=tmp_path, started=started)

    # Then the ended one answers whole seconds (botocore's minimum is 1), billed all of them (never interrupted),
    # with its ResourceConfig; the running one answers neither yet
    described = job.describe()
    assert (described["TrainingTimeInSeconds"], described["BillableTimeInSeconds"]) == (62, 62)
    assert described["ResourceConfig"]["InstanceType"] == "ml.c5.4xlarge"
    assert {"TrainingTimeInSeconds", "BillableTimeInSeconds"}.isdisjoint(running.describe())
