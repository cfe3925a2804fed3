"""The REST API against its own OpenAPI document, by property: Schemathesis generates requests from the
served `/openapi.json` (valid ones and ones that break it), sends them signed as an IAM caller to the local
stack, and fails on any 5xx and on any response the document does not describe (status, content type,
body schema, headers). The stack has no labelled data, so the runs that valid requests start end at once."""

from __future__ import annotations

from typing import Any

import pytest
import requests
import schemathesis
from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from schemathesis import GenerationMode
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_headers_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from local import drive
from local.emulator import REGION
from local.stack import LOCAL_USER_KEY, LocalStack
from sam_stack.client import Api

EXAMPLES = 50
URL_LIMIT = 10_240
CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_schema_conformance,
    response_headers_conformance,
]


class IamCaller(requests.auth.AuthBase):
    """Signs each request with SigV4 for execute-api, as an IAM user's SDK would."""

    def __init__(self, api: Api) -> None:
        self.credentials = Credentials(api.access_key, api.secret_key, api.session_token)

    def __call__(self, request: requests.PreparedRequest) -> requests.PreparedRequest:
        body = request.body.encode() if isinstance(request.body, str) else request.body or b""
        signed = AWSRequest(method=request.method, url=request.url, data=body, headers=dict(request.headers))
        SigV4Auth(self.credentials, "execute-api", REGION).add_auth(signed)
        request.headers.update(dict(signed.headers.items()))
        return request


@pytest.fixture(scope="module")
def api(empty_stack: LocalStack) -> Api:
    return drive.api(empty_stack.api.url, LOCAL_USER_KEY)


@pytest.fixture(scope="module")
def session(api: Api) -> requests.Session:
    signed = requests.Session()
    signed.auth = IamCaller(api)
    return signed


@pytest.fixture(scope="module")
def served(api: Api) -> Any:
    status, document = api.call("GET", "/openapi.json")
    assert status == 200, document
    return schemathesis.openapi.from_dict(document)


def test_every_request_gets_an_answer_the_document_describes(served: Any, api: Api, session: requests.Session) -> None:
    # schemathesis.pytest.from_fixture reads pytest's private Node._nodeid, which pytest 9.2 no longer has:
    # this test draws each operation's cases from Hypothesis itself instead
    # the IAM routes: Slack's route (documented unsigned) is called by Slack with its own signature, which
    # tests/e2e/test_local_stack.py and the slack_actions tests exercise
    operations = [result.ok() for result in served.get_all_operations() if result.ok().path != "/slack/actions"]
    assert len(operations) >= 10
    for operation in operations:
        cases = st.one_of(
            operation.as_strategy(GenerationMode.POSITIVE), operation.as_strategy(GenerationMode.NEGATIVE)
        )

        @given(case=cases)
        @settings(max_examples=EXAMPLES, deadline=None, suppress_health_check=list(HealthCheck), database=None)
        def answered(case: Any) -> None:
            response = case.call(base_url=api.url, session=session)
            if response.status_code == 414:
                # a request line longer than an HTTP server takes is refused before any API sees it (API Gateway
                # allows 10240 bytes of request line and headers; this stand-in's server 65536): the transport's
                # answer, not the document's
                assert len(response.request.url) > URL_LIMIT, response.request.url[:200]
                return
            case.validate_response(response, checks=CHECKS)

        try:
            answered()
        except Exception as error:
            raise AssertionError(f"{operation.method.upper()} {operation.path}: {error}") from error
