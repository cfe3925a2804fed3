"""scratch-detector without a stack: where it finds the API (precedence, and the errors when it cannot), how it
refuses a bad option value before any call, and how it shows the API's answers."""

from __future__ import annotations

import json
import typing
from pathlib import Path
from typing import Any

import pytest
from rich.console import Console
from typer.testing import CliRunner

from control_plane import models
from local.iam import users
from rollout.environments import environments
from scratch_cli import main, show, target
from scratch_cli.target import TargetError, Where, api_for


@pytest.fixture
def aws_keys(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """boto3's default chain finds these keys in the environment, and no profile or instance role."""
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "AKIDEXAMPLE")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "secret")
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "none"))
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(tmp_path / "none"))
    for name in ("AWS_PROFILE", "AWS_SESSION_TOKEN", "AWS_REGION", "AWS_DEFAULT_REGION"):
        monkeypatch.delenv(name, raising=False)


@pytest.fixture
def state_file(tmp_path: Path) -> Path:
    path = tmp_path / "stack.json"
    path.write_text(json.dumps({"pid": 1, "api": "http://127.0.0.1:8787"}))
    return path


@pytest.fixture
def stacks(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """The stacks whose outputs were read, each answering an API URL in eu-west-1 named after it (CloudFormation
    itself is tests/e2e's: make start-run's test reads the outputs of a stack of the local stack)."""
    read: list[str] = []

    def stack_url(name: str, _: Where) -> str:
        read.append(name)
        return f"https://a1b2c3d4e5.execute-api.eu-west-1.amazonaws.com/{name}"

    monkeypatch.setattr(target, "stack_url", stack_url)
    return read


@pytest.mark.usefixtures("aws_keys")
def test_url_comes_first_and_is_signed_with_the_default_chain(state_file: Path, stacks: list[str]) -> None:
    api = api_for(Where(url="https://x1.execute-api.ap-south-1.amazonaws.com/dev/", local=True, stack="s", env="dev",
                        state_file=state_file))  # fmt: skip

    assert api.url == "https://x1.execute-api.ap-south-1.amazonaws.com/dev"
    assert (api.access_key, api.secret_key, api.region) == ("AKIDEXAMPLE", "secret", "ap-south-1")
    assert stacks == []


def test_local_comes_before_a_stack_and_signs_as_a_local_user(state_file: Path, stacks: list[str]) -> None:
    admin = api_for(Where(local=True, stack="s", env="dev", state_file=state_file))
    reader = api_for(Where(local=True, user="reader", state_file=state_file))

    assert admin.url == "http://127.0.0.1:8787"
    assert admin.access_key == users.ADMIN.access_key
    assert reader.access_key == users.READER.access_key
    assert stacks == []


@pytest.mark.usefixtures("aws_keys")
def test_a_stack_comes_before_an_environment_whose_stack_is_samconfigs(stacks: list[str]) -> None:
    named = api_for(Where(stack="mine", env="dev"))
    prod = api_for(Where(env="prod"))

    assert named.url.endswith("/mine")
    assert named.region == "eu-west-1"
    assert stacks == ["mine", environments()["prod"].stack_name]
    assert prod.url.endswith(f"/{environments()['prod'].stack_name}")


@pytest.mark.parametrize(
    ("where", "says"),
    [
        (Where(), "no API given: use --url URL, --local (the stack `make up` started), --stack NAME or --env dev|prod"),
        (Where(url="https://example.com", user="reader"), "--as picks a local user: use it with --local"),
        (Where(local=True, state_file=Path("/nowhere/stack.json")), "start one with `make up`"),
        (Where(local=True, user="root"), "--as: 'root' is not a local user"),
        (Where(env="staging"), "--env: ENV=staging is not an environment of samconfig.toml: use one of dev, prod"),
    ],
)
def test_without_an_api_to_call_the_error_says_what_to_give(where: Where, says: str) -> None:
    with pytest.raises(TargetError) as error:
        api_for(where)

    assert says in str(error.value)


def test_no_api_is_a_usage_error() -> None:
    result = CliRunner().invoke(main.app, ["config"], env={"SCRATCH_DETECTOR_URL": ""})

    assert result.exit_code == main.USAGE
    assert "error: no API given" in result.stderr


@pytest.mark.parametrize(
    ("arguments", "named"),
    [
        (["runs", "show", "NOT-A-RUN"], "run_id"),
        (["runs", "list", "--limit", "0"], "--limit"),
        (["runs", "list", "--status", "Done"], "--status"),
        (["runs", "start", "-p", "NumEpochs"], "--parameter"),
        (["runs", "start", "--display-name", "two words"], "--display-name"),
        (["runs", "start", "--data-as-of", "x" * 65], "--data-as-of"),
        (["models", "show", "0"], "version"),
        (["models", "approve", "3", "--comment", " "], "--comment"),
        (["models", "list", "--status", "Pending"], "--status"),
        (["audit", "--subject", "run#short"], "--subject"),
    ],
)
def test_a_bad_value_is_refused_before_any_call_naming_its_option(arguments: list[str], named: str) -> None:
    # (the URL names a port nothing listens on, and unit tests have no network: a call would fail otherwise)
    result = CliRunner().invoke(main.app, ["--url", "http://127.0.0.1:9", *arguments], env={"COLUMNS": "200"})

    assert result.exit_code == main.USAGE
    assert named in result.stderr
    assert "Unreachable" not in result.stderr


def test_the_command_lines_limits_are_the_apis() -> None:
    assert main.RUN_ID_PATTERN == models.RUN_ID_PATTERN
    assert main.SUBJECT_PATTERN == models.SUBJECT_PATTERN
    assert main.ONE_LINE == models.ONE_LINE
    display_name = typing.get_args(models.DisplayName)[1]
    assert display_name.pattern == main.DISPLAY_NAME_PATTERN
    assert {s.value for s in main.RunStatus} == set(typing.get_args(models.RunStatus))
    assert {s.value for s in main.ApprovalStatus} == set(typing.get_args(models.ApprovalStatus))
    assert {user.name: user.access_key for user in users.USERS.values()} == target.LOCAL_KEYS


def test_an_execute_api_url_names_its_region() -> None:
    assert target.url_region("https://abc123.execute-api.eu-central-1.amazonaws.com/prod") == "eu-central-1"
    assert target.url_region("http://127.0.0.1:8787") is None


def rendered(tables: Any) -> str:
    console = Console(record=True, width=200)
    show.print_tables(console, tables)
    return console.export_text()


def test_a_page_is_a_table_with_its_next_token() -> None:
    page = {"runs": [{"run_id": "abc123def456", "status": "Executing", "display_name": None, "started": "2026-12-05"}],
            "next_token": "tok"}  # fmt: skip

    text = rendered(show.page(page, "runs", show.RUN_COLUMNS))

    header = next(line for line in text.splitlines() if "run_id" in line)
    row = next(line for line in text.splitlines() if "abc123def456" in line)
    assert [cell.strip() for cell in header.split("┃")[1:5]] == list(show.RUN_COLUMNS)
    assert [cell.strip() for cell in row.split("│")[1:5]] == ["abc123def456", "Executing", "", "2026-12-05"]
    assert "next_token" in text
    assert "tok" in text


def test_cells_show_floats_mappings_and_nothing_for_none() -> None:
    assert show.cell(None) == ""
    assert show.cell(0.87654) == "0.877"
    assert show.cell({"map": {"value": 0.5}, "n": 3}) == "map={value=0.500}, n=3"
    assert show.cell(["a", 1]) == "a, 1"


def test_the_result_of_a_run_names_its_map_model_cost_and_links() -> None:
    detail = {
        "run_id": "abc123def456",
        "status": "Succeeded",
        "steps": [{"name": "Train", "status": "Succeeded", "logs_url": "https://logs/train"}],
        "evaluation": {"metrics": {"map": {"value": 0.8712}}},
        "model": {"version": 7, "approval_status": "PendingManualApproval", "arn": "arn:model/7"},
        "cost": {"estimated": 1.234, "currency": "USD", "region": "us-east-1", "as_of": "2026-12-04",
                 "complete": True, "upper_bound": True},
        "artefacts": {"expires_at": "2026-12-05", "predictions_png": "https://s3/p.png", "model_archive": None},
    }  # fmt: skip

    assert show.result_lines(detail) == [
        "run            abc123def456 Succeeded",
        "test mAP       0.871",
        "model          v7 PendingManualApproval (arn:model/7)",
        "cost           at most 1.23 USD, us-east-1 on-demand list prices of 2026-12-04",
        "link           Train logs: https://logs/train",
        "link           predictions_png: https://s3/p.png",
    ]


def test_a_run_shows_what_changed_in_its_data_since_the_champion() -> None:
    summary = "Data since v3: +1 image, 1 relabelled, 0 removed (train +1, test 1 relabelled); 41 images (v3: 40)"
    detail = {"run_id": "abc123def456", "status": "Succeeded", "steps": [],
              "data_changes": {"champion_version": 3, "summary": summary, "totals": {"added": 1},
                               "examples": {"added": ["s3://images/new.jpg"], "removed": []}}}  # fmt: skip

    text = rendered(show.run_detail(detail))

    assert "Data since v3: +1 image, 1 relabelled, 0 removed" in text
    assert "added: s3://images/new.jpg" in text
    assert "removed:" not in text
    assert show.data_changes_text(None) is None


def test_a_failed_run_says_why_and_has_no_map() -> None:
    detail = {"run_id": "abc123def456", "status": "Failed", "failure_reason": "mAP 0.1 < 0.5", "steps": [],
              "cost": {"estimated": None, "unpriced": ["Train: no price for ml.p3.2xlarge"]}}  # fmt: skip

    assert show.result_lines(detail) == [
        "run            abc123def456 Failed",
        "reason         mAP 0.1 < 0.5",
        "test mAP       none",
        "cost           no estimate (Train: no price for ml.p3.2xlarge)",
    ]


def test_following_says_each_change_once() -> None:
    said: list[str] = []
    watcher = show.Watcher(say=said.append)
    first = {"steps": [{"name": "Train", "status": "Executing"}], "training_metrics": {}}
    metrics = {"train:obj_loss": 1.0, "train:cls_loss": 0.5, "validation:map": 0.25, "train:images_per_second": 30.0}
    second = {"steps": [{"name": "Train", "status": "Executing"}], "training_metrics": metrics}
    failed = {"steps": [{"name": "Train", "status": "Failed", "failure_reason": "OOM"}], "training_metrics": metrics}

    for detail in (first, first, second, second, failed):
        watcher(detail)

    assert said == ["Train Executing", "  Train  loss 1.500  val mAP 0.250  (30.0 img/s)", "Train Failed: OOM"]


def test_following_says_each_new_epoch_line_once() -> None:
    said: list[str] = []
    watcher = show.Watcher(say=said.append)
    steps = [{"name": "Train", "status": "Executing"}]
    ninth = {"steps": steps, "progress": {"text": "epoch 9/19  loss 1.500  (35.2 img/s)  about 5 min left"}}
    tenth = {"steps": steps, "progress": {"text": "epoch 10/19  loss 1.400  (35.2 img/s)  about 4 min left"}}

    for detail in ({"steps": steps}, ninth, ninth, tenth):
        watcher(detail)

    assert said == [
        "Train Executing",
        "  Train  epoch 9/19  loss 1.500  (35.2 img/s)  about 5 min left",
        "  Train  epoch 10/19  loss 1.400  (35.2 img/s)  about 4 min left",
    ]


def test_make_run_says_the_same_step_lines_and_leaves_metrics_to_the_epoch_lines() -> None:
    from io import StringIO

    from local.run import Progress

    out = StringIO()
    progress = Progress(out=out)
    detail = {
        "steps": [{"name": "Train", "status": "Executing"}],
        "training_metrics": {"train:obj_loss": 1.0},
        "progress": {"text": "epoch 1/2  loss 1.000  (1.0 img/s)  under a minute left"},
    }

    progress.run(detail)
    progress.run(detail)

    assert [line.split("] ", 1)[1] for line in out.getvalue().splitlines()] == ["Train Executing"]


def render(tables: list[Any]) -> str:
    console = Console(width=200, record=True)
    show.print_tables(console, tables)
    return console.export_text()


def test_models_show_names_the_data_the_model_learned_from_or_that_it_has_none() -> None:
    dataset = {"as_of": "2026-12-05T02:00:00.000Z", "manifest_uri": "s3://b/m.jsonl", "manifest_sha256": "ab"}
    pinned = render(show.model_detail({"version": 7, "dataset": dataset, "decisions": []}))
    assert "dataset (what it learned from)" in pinned
    assert all(value in pinned for value in dataset.values())
    older = render(show.model_detail({"version": 3, "dataset": None, "decisions": []}))
    assert "none: registered before its runs pinned their data" in older
