"""Powertools idempotency for a use case, built on its first call.

Every consumer of events and every start request runs at most once per key (SageMaker and EventBridge
deliver twice, clients retry). The DynamoDB persistence layer is created on first use, so a cold start
that never needs it does not load DynamoDB's client.
"""

from __future__ import annotations

from collections.abc import Callable
from functools import cache
from typing import Generic, ParamSpec, TypeVar

from aws_lambda_powertools.utilities.idempotency import DynamoDBPersistenceLayer, IdempotencyConfig, idempotent_function
from aws_lambda_powertools.utilities.idempotency.serialization.pydantic import PydanticSerializer
from aws_lambda_powertools.utilities.typing import LambdaContext
from pydantic import BaseModel

P = ParamSpec("P")
R = TypeVar("R", bound=BaseModel)

# How long an event consumer (notify, auto_deploy, the schedule) remembers an event it has handled: SageMaker may
# send an event twice and EventBridge retries a target for up to 24 h; a week is the margin over both
EVENT_SECONDS = 7 * 24 * 3600


class Once(Generic[P, R]):
    """`function(**kwargs)` once per key of `kwargs[data]`; repeats return the first result (a `result` model).
    Called as `function` is, and typed as it is; the `data` argument goes by keyword (Powertools finds it there).
    A key is remembered for `expires_after_seconds`, an event's redelivery window unless the use case says otherwise."""

    def __init__(
        self,
        function: Callable[P, R],
        result: type[R],
        *,
        table: str,
        data: str,
        key: str,
        expires_after_seconds: int = EVENT_SECONDS,
        payload: str | None = None,
    ) -> None:
        self.config = IdempotencyConfig(
            event_key_jmespath=key,
            payload_validation_jmespath=payload or "",
            expires_after_seconds=expires_after_seconds,
        )
        self._build: Callable[[], Callable[P, R]] = cache(
            lambda: idempotent_function(
                data_keyword_argument=data,
                persistence_store=DynamoDBPersistenceLayer(table_name=table),
                config=self.config,
                output_serializer=PydanticSerializer(model=result),
            )(function)
        )

    def register(self, context: LambdaContext) -> None:
        """Lets Powertools expire an in-progress record when the invocation times out."""
        self.config.register_lambda_context(context)

    def __call__(self, *args: P.args, **kwargs: P.kwargs) -> R:
        return self._build()(*args, **kwargs)
