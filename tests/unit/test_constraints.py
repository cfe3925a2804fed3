"""local/constraints.py: a request that breaks its service model's pattern, length, range or enum fails as AWS
fails it, naming the operation, the member path and the constraint; a request that keeps them goes through."""

from __future__ import annotations

from typing import Any

import boto3
import botocore.session
import pytest
from botocore.stub import Stubber

from local import constraints
from local.constraints import ConstraintViolation, compiled, java_to_python

pytest_plugins = ["pytester"]

# every service the product, the local stack and the rollout call
SERVICES = (
    "s3",
    "sagemaker",
    "sagemaker-featurestore-runtime",
    "ssm",
    "dynamodb",
    "secretsmanager",
    "events",
    "sqs",
    "ecr",
    "cloudformation",
    "logs",
    "sts",
    "apigateway",
    "lambda",
)
ROLE = "arn:aws:iam::123456789012:role/pipeline"


@pytest.fixture
def sagemaker() -> Any:
    return boto3.client(
        "sagemaker", region_name="us-east-1", aws_access_key_id="testing", aws_secret_access_key="testing"
    )


def refused(call: Any, **request: Any) -> ConstraintViolation:
    with pytest.raises(ConstraintViolation) as caught:
        call(**request)
    assert constraints.take() == [caught.value]
    return caught.value


def test_a_pattern_is_enforced_with_the_operation_and_member(sagemaker: Any) -> None:
    # When a display name has spaces, which SageMaker's pattern refuses
    error = refused(
        sagemaker.create_pipeline,
        PipelineName="scratch",
        PipelineDisplayName="Scratch detector training",
        PipelineDefinition="{}",
        RoleArn=ROLE,
        ClientRequestToken="t" * 32,
    )
    # Then it is the service's 400 ValidationException, with the operation, the path and the pattern
    assert error.response["Error"]["Code"] == "ValidationException"
    assert error.response["ResponseMetadata"]["HTTPStatusCode"] == 400
    assert error.operation_name == "CreatePipeline"
    assert error.problems == [
        "Value 'Scratch detector training' at 'PipelineDisplayName' failed to satisfy constraint: "
        "Member must satisfy regular expression pattern: [a-zA-Z0-9](-*[a-zA-Z0-9]){0,255}"
    ]
    assert "when calling the CreatePipeline operation" in str(error)


def test_a_maximum_length_a_range_and_an_enum_are_enforced_in_nested_members(sagemaker: Any) -> None:
    error = refused(
        sagemaker.start_pipeline_execution,
        PipelineName="scratch",
        PipelineParameters=[{"Name": "NumEpochs", "Value": "1"}, {"Name": "x" * 257, "Value": "1"}],
        ParallelismConfiguration={"MaxParallelExecutionSteps": 0},
        ClientRequestToken="t" * 32,
    )
    assert error.problems[0].startswith("Value 'xxxx")
    assert (
        "at 'PipelineParameters[1].Name' failed to satisfy constraint: Member must have length less than or "
        in (error.problems[0])
    )
    assert error.problems[1] == (
        "Value 0 at 'ParallelismConfiguration.MaxParallelExecutionSteps' failed to satisfy constraint: "
        "Member must have value greater than or equal to 1"
    )
    enum = refused(sagemaker.list_model_packages, ModelApprovalStatus="Approve", MaxResults=10)
    assert enum.problems == [
        "Value 'Approve' at 'ModelApprovalStatus' failed to satisfy constraint: "
        "Member must satisfy enum value set: [Approved, Rejected, PendingManualApproval]"
    ]


def test_a_newline_in_a_single_line_field_is_refused(sagemaker: Any) -> None:
    # SageMaker's descriptions are `.*`, which a line break does not match (Java's matches() takes the whole value)
    error = refused(
        sagemaker.update_model_package,
        ModelPackageArn="arn:aws:sagemaker:us-east-1:123456789012:model-package/scratch/1",
        ApprovalDescription="fine\nreally",
    )
    assert "at 'ApprovalDescription'" in error.problems[0]


def test_a_model_packages_metadata_values_are_held_to_the_services_length_and_characters(sagemaker: Any) -> None:
    # the run's dataset goes into CustomerMetadataProperties (DataAsOf, DataManifest, DataManifestSha256): values of
    # 1 to 256 characters of letters, digits, spaces and _.:/=+-@
    error = refused(
        sagemaker.create_model_package,
        ModelPackageGroupName="scratch",
        CustomerMetadataProperties={
            "DataAsOf": "2026-12-05T02:00:00.000Z",
            "DataManifest": "s3://bucket/" + "p" * 300 + "/manifest.jsonl",
            "DataManifestSha256": "",
            "Note": "it's",
        },
    )
    assert error.operation_name == "CreateModelPackage"
    assert sorted(problem.split(" at ")[1].split(" failed")[0] for problem in error.problems) == [
        "'CustomerMetadataProperties.DataManifest'",
        "'CustomerMetadataProperties.DataManifestSha256'",
        "'CustomerMetadataProperties.Note'",
    ]


def test_lengths_count_utf16_units_as_the_service_does() -> None:
    # a 3072-character limit holds 1536 emoji, not 3072
    shape = botocore.session.get_session().get_service_model("sagemaker").shape_for("PipelineExecutionDescription")
    assert shape.metadata["max"] == 3072
    assert list(constraints.problems(shape, "\U0001f600" * 1536, "Description")) == []
    assert list(constraints.problems(shape, "\U0001f600" * 1537, "Description"))


def test_a_request_within_its_constraints_is_sent(sagemaker: Any) -> None:
    with Stubber(sagemaker) as stub:
        stub.add_response("list_model_packages", {"ModelPackageSummaryList": []})
        assert (
            sagemaker.list_model_packages(ModelApprovalStatus="Approved", MaxResults=100)["ModelPackageSummaryList"]
            == []
        )
    assert constraints.take() == []


def test_every_pattern_of_the_services_we_call_compiles() -> None:
    session = botocore.session.get_session()
    patterns = {
        shape.metadata["pattern"]
        for service in SERVICES
        for model in [session.get_service_model(service)]
        for shape in map(model.shape_for, model.shape_names)
        if "pattern" in shape.metadata
    }
    assert len(patterns) > 400
    for pattern in patterns:
        compiled(pattern)


@pytest.mark.parametrize(
    ("java", "value", "matches"),
    [
        # Java's surrogate pair ranges are the supplementary planes
        ("[\\u0020-\\uD7FF\\uE000-\\uFFFD\\uD800\\uDC00-\\uDBFF\\uDFFF\\t]*", "a\U0001f600b", True),
        ("[\\u0020-\\uD7FF\\uE000-\\uFFFD\\uD800\\uDC00-\\uDBFF\\uDFFF\\t]*", "a\nb", False),
        # Java's POSIX classes are ASCII only, inside a class or alone
        ("arn:[\\p{Alnum}\\-]+:x", "arn:aws-cn:x", True),
        ("arn:[\\p{Alnum}\\-]+:x", "arn:é:x", False),
        ("\\p{Print}+", "name ok", True),
        ("\\p{Print}+", "tab\there", False),
        # \p{L} is any letter
        ("[\\p{L}\\p{Z}\\p{N}_.:/=+\\-@]*", "Équipe 7", True),
        ("[]a]+", "]a", True),
    ],
)
def test_java_patterns_mean_what_they_mean_in_java(java: str, value: str, matches: bool) -> None:
    assert bool(compiled(java).fullmatch(value)) is matches, java_to_python(java)


def test_a_violation_the_code_swallowed_still_fails_the_test(pytester: pytest.Pytester) -> None:
    # Given a test whose code catches the service's error and goes on
    pytester.makeconftest('pytest_plugins = ["local.pytest_aws"]')
    pytester.makepyfile(
        """
        import boto3
        from botocore.exceptions import ClientError

        def test_swallows():
            client = boto3.client("sagemaker", region_name="us-east-1",
                                  aws_access_key_id="x", aws_secret_access_key="y")
            try:
                client.list_model_packages(ModelApprovalStatus="Fine")
            except ClientError:
                pass
        """
    )
    # When it runs, Then it fails and says which request AWS would have refused
    result = pytester.runpytest_inprocess("-p", "no:cacheprovider")
    result.assert_outcomes(passed=1, errors=1)
    result.stdout.fnmatch_lines(["requests AWS would refuse:", "*ListModelPackages operation*'ModelApprovalStatus'*"])
