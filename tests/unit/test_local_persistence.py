"""The local stack's saving machinery without any service: atomic files, which requests count as changes, and the
executions' state when one saved record is damaged."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, cast

import pytest

from local import changes, daemon, persist
from local.executor.engine import Executor
from local.executor.jobs import JobRunner
from local.executor.records import Execution, StepRun
from local.executor.state import INTERRUPTED, load_state, save_state


def signed(service: str, **environ: str) -> dict[str, Any]:
    scope = f"AWS4-HMAC-SHA256 Credential=LOCALUSER/20261204/us-east-1/{service}/aws4_request, SignedHeaders=host"
    return {"HTTP_AUTHORIZATION": scope, **environ}


@pytest.mark.parametrize(
    ("environ", "changes_state"),
    [
        (signed("s3", REQUEST_METHOD="GET"), False),
        (signed("s3", REQUEST_METHOD="HEAD"), False),
        (signed("s3", REQUEST_METHOD="PUT"), True),
        (signed("s3", REQUEST_METHOD="POST"), True),  # DeleteObjects
        (signed("sagemaker", REQUEST_METHOD="POST", HTTP_X_AMZ_TARGET="SageMaker.DescribeModelPackage"), False),
        (signed("sagemaker", REQUEST_METHOD="POST", HTTP_X_AMZ_TARGET="SageMaker.UpdateModelPackage"), True),
        (signed("dynamodb", REQUEST_METHOD="POST", HTTP_X_AMZ_TARGET="DynamoDB_20120810.Scan"), False),
        (signed("dynamodb", REQUEST_METHOD="POST", HTTP_X_AMZ_TARGET="DynamoDB_20120810.PutItem"), True),
        (signed("ssm", REQUEST_METHOD="POST", HTTP_X_AMZ_TARGET="AmazonSSM.PutParameter"), True),
        # services whose state is not saved: the dispatcher's polling must not wake the saver
        (signed("sqs", REQUEST_METHOD="POST", HTTP_X_AMZ_TARGET="AmazonSQS.DeleteMessage"), False),
        (signed("events", REQUEST_METHOD="POST", HTTP_X_AMZ_TARGET="AWSEvents.PutEvents"), False),
        # unsigned or presigned: assumed to change something
        ({"REQUEST_METHOD": "PUT"}, True),
    ],
)
def test_which_requests_count_as_changes(environ: dict[str, Any], changes_state: bool) -> None:
    assert changes.changes_state(environ) is changes_state


def test_a_save_that_fails_half_way_leaves_the_previous_file(tmp_path: Path) -> None:
    # Given a saved file
    path = tmp_path / "state.json"
    persist.write_text(path, '{"saved": 1}')

    # When the next save dies after writing part of its file
    def half(temporary: Path) -> None:
        temporary.write_text('{"sav')
        raise OSError("killed")

    with pytest.raises(OSError, match="killed"):
        persist.replace(path, half)

    # Then the previous file is whole and nothing else is left beside it
    assert json.loads(path.read_text()) == {"saved": 1}
    assert [p.name for p in tmp_path.iterdir()] == ["state.json"]


def executor(work: Path) -> Executor:
    return Executor(None, None, None, runner=cast(JobRunner, None), work=work)


def execution(number: int) -> Execution:
    arn = f"arn:aws:sagemaker:us-east-1:123456789012:pipeline/p/execution/{number}"
    step = StepRun(name="Train", type="Training", status="Executing")
    return Execution(arn, "p", "arn:p", {}, {}, f"run-{number}", "", None, steps={"Train": step})


def test_a_damaged_execution_is_named_and_the_running_one_comes_back_stopped(tmp_path: Path) -> None:
    # Given a stack killed while one run was executing, and a second saved execution that is damaged
    running = executor(tmp_path)
    for number in (1, 2):
        running.executions[execution(number).arn] = execution(number)
    save_state(running, tmp_path / "executions.json")
    saved = json.loads((tmp_path / "executions.json").read_text())
    del saved["executions"][1]["pipeline_name"]
    (tmp_path / "executions.json").write_text(json.dumps(saved))

    # When the stack starts again
    restarted = executor(tmp_path)
    skipped = load_state(restarted, tmp_path / "executions.json")

    # Then the damaged one is named, and the run comes back Stopped with the reason, its step too
    assert [s.item for s in skipped] == [f"execution {execution(2).arn}"]
    [back] = restarted.executions.values()
    assert (back.status, back.failure_reason) == ("Stopped", INTERRUPTED)
    assert (back.steps["Train"].status, back.steps["Train"].failure_reason) == ("Stopped", INTERRUPTED)


def test_an_unreadable_executions_file_is_named(tmp_path: Path) -> None:
    (tmp_path / "executions.json").write_text('{"executions": [')
    skipped = load_state(executor(tmp_path), tmp_path / "executions.json")
    assert [s.item for s in skipped] == ["the saved executions and jobs"]


def test_s3_changes_name_their_objects_and_a_change_that_cannot_be_placed_names_every_bucket() -> None:
    # Given nothing changed since the last take
    changes.take_objects()
    host = {"HTTP_HOST": "127.0.0.1:4566"}

    # When objects are put, one bucket is emptied by DeleteObjects, and a read happens
    changes.record(signed("s3", REQUEST_METHOD="PUT", PATH_INFO="/bucket-a/images/1.png", **host))
    changes.record(signed("s3", REQUEST_METHOD="PUT", PATH_INFO="/bucket-a/caf\u00c3\u00a9.txt", **host))
    changes.record(signed("s3", REQUEST_METHOD="POST", PATH_INFO="/bucket-b", QUERY_STRING="delete", **host))
    changes.record(signed("s3", REQUEST_METHOD="PUT", PATH_INFO="/bucket-b/x", **host))
    changes.record(signed("s3", REQUEST_METHOD="GET", PATH_INFO="/bucket-c/y", **host))

    # Then the take names each object (the key as UTF-8, as WSGI passes it in Latin-1), the whole second bucket, and
    # nothing read; and the next take is empty
    assert changes.take_objects() == {"bucket-a": {"images/1.png", "café.txt"}, "bucket-b": None}
    assert changes.take_objects() == {}

    # And a change addressed by host name (virtual-host style) could be in any bucket
    changes.record(signed("s3", REQUEST_METHOD="PUT", PATH_INFO="/key", HTTP_HOST="bucket-a.s3.amazonaws.com"))
    assert changes.take_objects() is None
    # a failed save gives its changes back for the next one
    changes.give_back({"bucket-a": {"k"}})
    assert changes.take_objects() == {"bucket-a": {"k"}}


def test_make_up_names_what_was_not_restored_and_where_its_files_are(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    state = {
        "pid": 1,
        "api": "http://127.0.0.1:8787",
        "endpoints": {},
        "not_restored": ["model package g/2: refused", "model package g/3: never renumbered"],
        "unrestored": str(tmp_path / "unrestored" / "t"),
    }
    daemon._print_up(state, tmp_path / "stack.log")
    printed = capsys.readouterr().out.splitlines()
    assert printed[-3:] == [
        f"not restored from the saved state (copies of its files in {tmp_path / 'unrestored' / 't'}):",
        "  model package g/2: refused",
        "  model package g/3: never renumbered",
    ]
