"""`scratch-detector`: every route of the control plane's REST API as a command.

Exit codes: 0 done; 1 the API refused the request (4xx: its error code and message on stderr); 2 a usage error (a bad
option value, named, or no API to call); 3 the API failed (5xx) or could not be reached; 4 `runs follow` (or `runs
start --follow`) saw the run end other than Succeeded.
"""

from __future__ import annotations

import json
import re
from enum import StrEnum
from pathlib import Path
from typing import Annotated, Any

import typer
from botocore.exceptions import BotoCoreError, ClientError
from rich.console import Console

from sam_stack.client import Api
from scratch_cli import calls, show
from scratch_cli.target import TargetError, Where, api_for

REFUSED, USAGE, FAILED, RUN_NOT_SUCCEEDED = 1, 2, 3, 4
# the API's own limits (control_plane.models, functions/api/app.py; tests/unit/test_cli.py checks they agree)
RUN_ID_PATTERN = r"^[a-z0-9]{12}$"
_NAME = r"[a-zA-Z0-9](-*[a-zA-Z0-9]){0,62}"
SUBJECT_PATTERN = rf"^(run#[a-z0-9]{{12}}|model#{_NAME}/[1-9][0-9]{{0,8}}|endpoint#{_NAME})$"
DISPLAY_NAME_PATTERN = r"^[a-zA-Z0-9](-*[a-zA-Z0-9]){0,81}$"
ONE_LINE = r"^[^\x00-\x1F\x7F\u0085\u2028\u2029]*$"
MAX_VERSION = 999_999_999

app = typer.Typer(
    help="Every route of the control plane's REST API, signed as you (SigV4, execute-api).",
    epilog="Exit codes: 0 done; 1 refused by the API (4xx); 2 usage (a bad option, no API or credentials); "
    "3 the API failed (5xx) or is unreachable; 4 the followed run ended Failed or Stopped.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
)
runs = typer.Typer(help="Training runs: start, list, show, follow, stop, retry.", no_args_is_help=True)
models = typer.Typer(help="Model packages: list, show, approve, reject, deploy.", no_args_is_help=True)
app.add_typer(runs, name="runs")
app.add_typer(models, name="models")


class RunStatus(StrEnum):
    Executing = "Executing"
    Stopping = "Stopping"
    Stopped = "Stopped"
    Failed = "Failed"
    Succeeded = "Succeeded"


class ApprovalStatus(StrEnum):
    Approved = "Approved"
    Rejected = "Rejected"
    PendingManualApproval = "PendingManualApproval"


class LocalUser(StrEnum):
    admin = "admin"
    runner = "runner"
    approver = "approver"
    deployer = "deployer"
    reader = "reader"


def matching(pattern: str, what: str) -> Any:
    """A typer callback: the value when it matches `pattern`, else a usage error naming the option and `what`."""

    def check(value: str | None) -> str | None:
        if value is not None and not re.match(pattern, value):
            raise typer.BadParameter(f"{value!r} is not {what}")
        return value

    return check


RunId = Annotated[
    str,
    typer.Argument(
        help="the run's id (12 lowercase letters or digits)",
        callback=matching(RUN_ID_PATTERN, "a run id (12 lowercase letters or digits)"),
    ),
]
Version = Annotated[int, typer.Argument(help="the model package version", min=1, max=MAX_VERSION)]
Limit = Annotated[int, typer.Option(help="answers per page", min=1, max=100)]
NextToken = Annotated[
    str | None, typer.Option(help="the next_token of the previous page", callback=matching(r"^\S{1,1024}$", "a token"))
]
Json = Annotated[bool, typer.Option("--json", help="print the API's JSON answer as it came, for scripts")]


class Context:
    def __init__(self, where: Where) -> None:
        self.where = where

    def api(self) -> Api:
        return api_for(self.where)


@app.callback()
def options(
    ctx: typer.Context,
    *,
    url: Annotated[
        str | None, typer.Option(help="the API's base URL (first in precedence)", envvar="SCRATCH_DETECTOR_URL")
    ] = None,
    local: Annotated[
        bool, typer.Option("--local", help="the local stack `make up` started (work/local/stack.json)")
    ] = False,
    stack: Annotated[str | None, typer.Option(help="a deployed stack's name: its ApiUrl output")] = None,
    env: Annotated[str | None, typer.Option(help="an environment of samconfig.toml (dev, prod): its stack")] = None,
    profile: Annotated[str | None, typer.Option(help="the AWS profile to sign with (default: boto3's chain)")] = None,
    region: Annotated[
        str | None, typer.Option(help="the API's region (default: the URL's, else the profile's)")
    ] = None,
    user: Annotated[
        LocalUser | None, typer.Option("--as", help="with --local: the local user to call as (admin)")
    ] = None,
    state_file: Annotated[Path, typer.Option(help="with --local: the local stack's state file")] = Path(
        "work/local/stack.json"
    ),
) -> None:
    """The control plane's REST API, signed as you. Where it is: --url, --local, --stack or --env (that order)."""
    where = Where(
        url=url,
        local=local,
        stack=stack,
        env=env,
        profile=profile,
        region=region,
        user=user.value if user else None,
        state_file=state_file,
    )
    ctx.obj = Context(where)


def answer(ctx: typer.Context, request: Any, *, as_json: bool, tables: Any) -> Any:
    """Call the API with `request(api)`; print its answer (JSON, or `tables(answer)`); exit with the error's code."""
    try:
        api = ctx.obj.api()
        found = request(api)
    except TargetError as error:
        fail(str(error), USAGE)
    except (BotoCoreError, ClientError) as error:
        fail(f"AWS: {error}", USAGE)
    except calls.ApiError as error:
        fail(
            f"{error.code}: {error.message}" + (f" (HTTP {error.status})" if error.status else ""),
            REFUSED if error.status is not None and error.status < 500 else FAILED,
        )
    if as_json:
        typer.echo(json.dumps(found, indent=2))
    else:
        show.print_tables(Console(), tables(found))
    return found


def route(ctx: typer.Context, method: str, path: str, *, body: Any = None, as_json: bool, tables: Any) -> Any:
    """`method path` on the API, its answer printed (answer())."""
    return answer(ctx, lambda api: calls.call(api, method, path, body=body), as_json=as_json, tables=tables)


def titled(title: str) -> Any:
    """The tables of an answer that is one record: its fields under `title`."""
    return lambda found: [show.fields(found, title=title)]


def fail(message: str, code: int) -> None:
    typer.echo(f"error: {message}", err=True)
    raise typer.Exit(code)


def parse_parameters(items: list[str]) -> dict[str, Any]:
    """`NAME=VALUE` pairs: VALUE as JSON when it is (numbers, booleans), else as text."""
    found: dict[str, Any] = {}
    for item in items:
        name, sep, value = item.partition("=")
        if not sep or not name:
            raise typer.BadParameter(f"{item!r} is not NAME=VALUE", param_hint="'--parameter'")
        try:
            found[name] = json.loads(value)
        except json.JSONDecodeError:
            found[name] = value
    return found


@runs.command("start")
def runs_start(
    ctx: typer.Context,
    *,
    parameter: Annotated[
        list[str] | None, typer.Option("--parameter", "-p", help="a run-time override, NAME=VALUE (repeatable)")
    ] = None,
    display_name: Annotated[
        str | None,
        typer.Option(
            help="the run's display name",
            callback=matching(DISPLAY_NAME_PATTERN, "a display name (letters, digits, inner hyphens, at most 82)"),
        ),
    ] = None,
    description: Annotated[
        str | None,
        typer.Option(
            help="one line, at most 1024 characters",
            callback=matching(r"^[^\x00-\x1F\x7F\u0085\u2028\u2029]{0,1024}$", "one line of at most 1024 characters"),
        ),
    ] = None,
    idempotency_key: Annotated[
        str | None,
        typer.Option(
            help="a retried start with the same key starts one run",
            min=1,
            callback=matching(r"^.{1,128}$", "1 to 128 characters"),
        ),
    ] = None,
    data_as_of: Annotated[
        str | None,
        typer.Option(
            help="train on the data as of this time (ISO 8601 with a UTC offset, e.g. 2026-12-05T02:00:00Z; "
            "default: now): the records written and the image versions current then",
            callback=matching(r"^.{1,64}$", "1 to 64 characters"),
        ),
    ] = None,
    follow: Annotated[bool, typer.Option("--follow", help="then follow the run as `runs follow` does")] = False,
    as_json: Json = False,
) -> None:
    """POST /runs: start a training run."""
    body = parse_parameters(parameter or [])
    started = answer(
        ctx,
        lambda api: calls.start_run(
            api,
            parameters=body,
            idempotency_key=idempotency_key,
            display_name=display_name,
            description=description,
            data_as_of=data_as_of,
        ),
        as_json=as_json,
        tables=titled("run started"),
    )
    if follow:
        follow_run(ctx, started["run_id"], every=5, as_json=as_json)


@runs.command("list")
def runs_list(
    ctx: typer.Context,
    *,
    status: Annotated[RunStatus | None, typer.Option(help="only runs in this status")] = None,
    limit: Limit = 20,
    next_token: NextToken = None,
    as_json: Json = False,
) -> None:
    """GET /runs: runs, newest first."""
    query = query_string(status=status.value if status else None, limit=limit, next_token=next_token)
    route(ctx, "GET", f"/runs{query}", as_json=as_json, tables=lambda found: show.page(found, "runs", show.RUN_COLUMNS))


def query_string(**values: Any) -> str:
    from urllib.parse import urlencode

    given = {k: v for k, v in values.items() if v is not None}
    return f"?{urlencode(given)}" if given else ""


@runs.command("show")
def runs_show(ctx: typer.Context, *, run_id: RunId, as_json: Json = False) -> None:
    """GET /runs/{id}: a run step by step, its cost, its evaluation and links."""
    answer(ctx, lambda api: calls.get_run(api, run_id), as_json=as_json, tables=show.run_detail)


@runs.command("stop")
def runs_stop(ctx: typer.Context, *, run_id: RunId, as_json: Json = False) -> None:
    """POST /runs/{id}/stop: stop an executing run."""
    route(ctx, "POST", f"/runs/{run_id}/stop", as_json=as_json, tables=titled("stopping"))


@runs.command("retry")
def runs_retry(ctx: typer.Context, *, run_id: RunId, as_json: Json = False) -> None:
    """POST /runs/{id}/retry: retry a failed or stopped run."""
    route(ctx, "POST", f"/runs/{run_id}/retry", as_json=as_json, tables=titled("retrying"))


@runs.command("follow")
def runs_follow(
    ctx: typer.Context,
    *,
    run_id: RunId,
    every: Annotated[float, typer.Option(help="seconds between two reads of the run", min=0.1)] = 5,
    as_json: Json = False,
) -> None:
    """Follow a run: each step as its status changes, the training metrics, then the result (exit 0: Succeeded)."""
    follow_run(ctx, run_id, every=every, as_json=as_json)


def follow_run(ctx: typer.Context, run_id: str, *, every: float, as_json: bool) -> None:
    console = Console()
    watcher = show.Watcher(say=lambda text: None if as_json else console.print(text, highlight=False))
    detail = answer(
        ctx, lambda api: calls.follow(api, run_id, seen=watcher, every=every), as_json=as_json, tables=lambda found: []
    )
    if not as_json:
        for line in show.result_lines(detail):
            console.print(line, highlight=False)
    if detail["status"] != "Succeeded":
        raise typer.Exit(RUN_NOT_SUCCEEDED)


@models.command("list")
def models_list(
    ctx: typer.Context,
    *,
    status: Annotated[ApprovalStatus | None, typer.Option(help="only this approval status")] = None,
    limit: Limit = 20,
    next_token: NextToken = None,
    as_json: Json = False,
) -> None:
    """GET /models: model packages, newest first, with their mAP."""
    query = query_string(status=status.value if status else None, limit=limit, next_token=next_token)
    route(
        ctx,
        "GET",
        f"/models{query}",
        as_json=as_json,
        tables=lambda found: show.page(found, "models", show.MODEL_COLUMNS),
    )


@models.command("show")
def models_show(ctx: typer.Context, *, version: Version, as_json: Json = False) -> None:
    """GET /models/{version}: a model package, its decisions and the run that trained it."""
    route(ctx, "GET", f"/models/{version}", as_json=as_json, tables=show.model_detail)


Comment = Annotated[
    str,
    typer.Option(
        help="why (one line, 1 to 512 characters; recorded in the audit trail)",
        callback=matching(
            r"^\s*[^\x00-\x1F\x7F\u0085\u2028\u2029\s][^\x00-\x1F\x7F\u0085\u2028\u2029]{0,511}$",
            "one line of 1 to 512 characters",
        ),
    ),
]


def decide(ctx: typer.Context, *, version: int, decision: str, comment: str, as_json: bool) -> None:
    route(
        ctx,
        "POST",
        f"/models/{version}/{decision}",
        body={"comment": comment},
        as_json=as_json,
        tables=titled(f"{decision} v{version}"),
    )


@models.command("approve")
def models_approve(ctx: typer.Context, *, version: Version, comment: Comment, as_json: Json = False) -> None:
    """POST /models/{version}/approve: approve a model package (a human decision, recorded)."""
    decide(ctx, version=version, decision="approve", comment=comment, as_json=as_json)


@models.command("reject")
def models_reject(ctx: typer.Context, *, version: Version, comment: Comment, as_json: Json = False) -> None:
    """POST /models/{version}/reject: reject a model package."""
    decide(ctx, version=version, decision="reject", comment=comment, as_json=as_json)


@models.command("deploy")
def models_deploy(ctx: typer.Context, *, version: Version, as_json: Json = False) -> None:
    """POST /models/{version}/deploy: deploy an Approved model package to the stack's endpoint."""
    route(
        ctx,
        "POST",
        f"/models/{version}/deploy",
        as_json=as_json,
        tables=titled("endpoint"),
    )


@app.command("endpoint")
def endpoint(ctx: typer.Context, *, as_json: Json = False) -> None:
    """GET /endpoint: the stack's real-time endpoint and the version it serves."""
    route(ctx, "GET", "/endpoint", as_json=as_json, tables=titled("endpoint"))


@app.command("audit")
def audit(
    ctx: typer.Context,
    *,
    subject: Annotated[
        str,
        typer.Option(
            help="run#<run id>, model#<group>/<version> or endpoint#<name>",
            callback=matching(SUBJECT_PATTERN, "run#<run id>, model#<group>/<version> or endpoint#<name>"),
        ),
    ],
    limit: Limit = 20,
    next_token: NextToken = None,
    as_json: Json = False,
) -> None:
    """GET /audit: the audit trail of a run, a model version or the endpoint, newest first."""
    query = query_string(subject=subject, limit=limit, next_token=next_token)
    route(
        ctx,
        "GET",
        f"/audit{query}",
        as_json=as_json,
        tables=lambda found: show.page(found, "entries", show.AUDIT_COLUMNS),
    )


@app.command("config")
def config(ctx: typer.Context, *, as_json: Json = False) -> None:
    """GET /config: the active pipeline config and its SSM version."""
    answer(
        ctx,
        lambda api: calls.call(api, "GET", "/config"),
        as_json=as_json,
        tables=lambda found: [
            show.fields({k: v for k, v in found.items() if k != "config"}, title="config"),
            show.fields(found.get("config") or {}, title="settings"),
        ],
    )


def main() -> None:
    app()
