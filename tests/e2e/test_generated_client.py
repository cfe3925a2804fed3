"""A typed client generated from the document the local stack serves (openapi-python-client), signing through
botocore with the README's own httpx auth hook, calls the API as a user would: a signed call gets typed answers,
and a refused one gets the API's error."""

from __future__ import annotations

import importlib
import importlib.util
import json
import re
import subprocess
import sys
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest
from botocore.credentials import Credentials

from local import drive
from local.emulator import REGION
from local.stack import LOCAL_READER_KEY, LOCAL_RUNNER_KEY, LOCAL_USER_KEY, LocalStack
from tests.conftest import REPO

PACKAGE = "detector_api"
# no formatter run over the generated code: the test reads it, nobody edits it
GENERATOR_CONFIG = "post_hooks: []\n"


@pytest.fixture(scope="module")
def client_package(empty_stack: LocalStack, tmp_path_factory: pytest.TempPathFactory) -> Iterator[ModuleType]:
    # the generator, and what the code it generates imports (a .venv older than requirements-dev.txt lacks them)
    for needed in ("openapi_python_client", "httpx", "attrs"):
        if importlib.util.find_spec(needed) is None:
            pytest.fail(f"{needed} is missing: `make` installs requirements-dev.txt into .venv", pytrace=False)
    # Given the document the local stack serves, fetched as a browser would: unsigned
    folder = tmp_path_factory.mktemp("generated")
    with urllib.request.urlopen(f"{empty_stack.api.url}/openapi.json", timeout=30) as response:
        assert response.status == 200
        (folder / "openapi.json").write_bytes(response.read())
    (folder / "config.yaml").write_text(GENERATOR_CONFIG)
    # When openapi-python-client generates a client from it
    generate = [sys.executable, "-m", "openapi_python_client", "generate", "--path", str(folder / "openapi.json")]
    options = ["--meta", "none", "--output-path", str(folder / PACKAGE), "--config", str(folder / "config.yaml")]
    done = subprocess.run([*generate, *options], capture_output=True, text=True, check=False, timeout=300)
    assert done.returncode == 0, done.stdout + done.stderr
    sys.path.insert(0, str(folder))
    yield importlib.import_module(PACKAGE)
    sys.path.remove(str(folder))
    for name in [m for m in sys.modules if m == PACKAGE or m.startswith(f"{PACKAGE}.")]:
        del sys.modules[name]


def readme_blocks() -> list[str]:
    """The Python blocks of the README's "A typed client": the SigV4 hook with signed_client, then the example."""
    section = (REPO / "README.md").read_text().split("### A typed client", 1)[1].split("\n## ", 1)[0]
    blocks = re.findall(r"```python\n(.*?)```", section, re.DOTALL)
    assert len(blocks) == 2, "README's 'A typed client' should have the hook and the example"
    return blocks


def readme_client_code() -> dict[str, Any]:
    """The README's SigV4 hook and signed_client, run as written."""
    namespace: dict[str, Any] = {}
    exec(compile(readme_blocks()[0], "README.md", "exec"), namespace)  # the repository's own README
    return namespace


def signed(stack: LocalStack, access_key: str) -> Any:
    """The generated client, signing as the local user holding `access_key` (any secret key)."""
    credentials = Credentials(access_key, drive.LOCAL_SECRET_KEY)
    return readme_client_code()["signed_client"](stack.api.url, REGION, credentials)


def operation(package: ModuleType, name: str) -> Any:
    return importlib.import_module(f"{package.__name__}.api.default.{name}")


def test_the_generated_client_starts_and_lists_runs_and_lists_models_typed(
    empty_stack: LocalStack, client_package: ModuleType
) -> None:
    models = importlib.import_module(f"{PACKAGE}.models")
    runner = signed(empty_stack, LOCAL_RUNNER_KEY)
    # When the runner starts a run through the typed request model
    body = models.StartRunRequest(display_name="generated-client")
    started = operation(client_package, "start_run_runs_post").sync_detailed(client=runner, body=body)
    # Then the API answers 201 with a typed RunStarted
    assert started.status_code == 201, started.content
    assert isinstance(started.parsed, models.RunStarted)
    # And the admin lists runs and models: typed pages, the run among them
    admin = signed(empty_stack, LOCAL_USER_KEY)
    runs = operation(client_package, "list_runs_runs_get").sync(client=admin, limit=5)
    assert isinstance(runs, models.RunPage)
    assert started.parsed.run_id in [run.run_id for run in runs.runs]
    page = operation(client_package, "list_models_models_get").sync(client=admin)
    assert isinstance(page, models.ModelPage)


def test_a_route_the_callers_duty_lacks_is_refused_with_the_apis_error(
    empty_stack: LocalStack, client_package: ModuleType
) -> None:
    models = importlib.import_module(f"{PACKAGE}.models")
    # Given the reader, whose duty holds no POST
    reader = signed(empty_stack, LOCAL_READER_KEY)
    # When it starts a run
    refused = operation(client_package, "start_run_runs_post").sync_detailed(
        client=reader, body=models.StartRunRequest()
    )
    # Then API Gateway refuses it before the function runs, in the API's error shape
    assert refused.status_code == 403
    error = json.loads(refused.content)["error"]
    assert error["code"] == "ACCESS_DENIED"
    assert "is not authorized to perform: execute-api:Invoke" in error["message"]
    # And the reader's own routes answer it
    assert operation(client_package, "list_runs_runs_get").sync_detailed(client=reader).status_code == 200


def test_an_unsigned_call_is_refused_and_only_the_document_is_open(
    empty_stack: LocalStack, client_package: ModuleType
) -> None:
    # Given the generated client with no auth hook
    unsigned = client_package.Client(base_url=empty_stack.api.url)
    # When it lists runs
    refused = operation(client_package, "list_runs_runs_get").sync_detailed(client=unsigned)
    # Then API Gateway asks for a signature
    assert refused.status_code == 403
    error = json.loads(refused.content)["error"]
    assert error == {"code": "MISSING_AUTHENTICATION_TOKEN", "message": "Missing Authentication Token"}
    # And the document it was generated from needs none
    with urllib.request.urlopen(f"{empty_stack.api.url}/openapi.json", timeout=30) as response:
        assert response.status == 200


def test_the_document_generated_from_declares_how_to_sign(client_package: ModuleType) -> None:
    document = Path(str(client_package.__file__)).parents[1] / "openapi.json"
    assert '"x-amazon-apigateway-authtype":"awsSigv4"' in document.read_text().replace(" ", "")


def test_the_readmes_example_lists_runs_with_the_usual_credentials(
    empty_stack: LocalStack,
    client_package: ModuleType,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    # Given a run, and the reader's keys where boto3's credential chain looks first
    run_id = drive.start_run(drive.api(empty_stack.api.url, LOCAL_RUNNER_KEY))["run_id"]
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", LOCAL_READER_KEY)
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", drive.LOCAL_SECRET_KEY)
    monkeypatch.delenv("AWS_SESSION_TOKEN", raising=False)
    monkeypatch.delenv("AWS_PROFILE", raising=False)
    # When the README's example runs, pointed at the local stack
    deployed = '"https://<api id>.execute-api.eu-west-1.amazonaws.com/dev", "eu-west-1"'
    example = readme_blocks()[1]
    assert deployed in example
    local = example.replace(deployed, f'"{empty_stack.api.url}", "{REGION}"')
    exec(compile(local, "README.md", "exec"), readme_client_code())  # the repository's own README
    # Then it prints the run, listed through the signed, typed client
    assert f"{run_id} " in capsys.readouterr().out
