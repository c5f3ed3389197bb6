"""The GraphQL surface only: types, inputs, roots, limits; no SQL and no business rules."""

from __future__ import annotations

import strawberry
from graphql import GraphQLError
from strawberry.extensions import ValidationCache
from strawberry.schema.config import StrawberryConfig
from strawberry.types import ExecutionContext

from schema.analytics import AnalyticsQueries
from schema.breakers import BreakerMutations, BreakerQueries
from schema.compiled import CompiledReads
from schema.enum_values import describe_enum_values
from schema.errors import ErrorCodes, ParseErrorsInside, log_errors
from schema.exports import ExportMutations
from schema.fastpath import PlainExecutor, install_plain_resolvers
from schema.governance import GovernanceMutations
from schema.incident_writes import IncidentWriteMutations
from schema.incidents import IncidentMutations, IncidentQueries
from schema.lessons import LessonMutations, LessonQueries
from schema.limit_writes import BreachQueries, LimitMutations
from schema.limits import LimitQueries
from schema.overrides import OverrideMutations, OverrideQueries
from schema.preflight import Preflight
from schema.query_limits import Limits, QueryLimits
from schema.runs import RunQueries
from schema.scalars import SCALARS
from schema.scopes import ScopeMutations, ScopeQueries
from schema.subscriptions import BreakerSubscriptions, IncidentSubscriptions
from schema.thresholds import ThresholdMutations, ThresholdQueries
from schema.viewer import ViewerQueries

__all__ = ["Limits", "Mutation", "Query", "Subscription", "build_schema", "sdl"]


@strawberry.type(description="Reads. Every list is a connection of at most 100 per page.")
class Query(
    ViewerQueries,
    IncidentQueries,
    LimitQueries,
    BreachQueries,
    OverrideQueries,
    ScopeQueries,
    ThresholdQueries,
    LessonQueries,
    AnalyticsQueries,
    BreakerQueries,
    RunQueries,
):
    pass


@strawberry.type(description="Writes. Each mutation is one transaction with one audit row.")
class Mutation(
    IncidentMutations,
    LimitMutations,
    OverrideMutations,
    ScopeMutations,
    ThresholdMutations,
    LessonMutations,
    ExportMutations,
    BreakerMutations,
    IncidentWriteMutations,
    GovernanceMutations,
):
    pass


@strawberry.type(
    description="Live changes over graphql-transport-ws; each subscriber sees only its tenant."
)
class Subscription(IncidentSubscriptions, BreakerSubscriptions):
    pass


class GatewaySchema(strawberry.Schema):
    """Logs each error once, as schema/errors.py decides: one line, a traceback only if INTERNAL."""

    def process_errors(
        self, errors: list[GraphQLError], execution_context: ExecutionContext | None = None
    ) -> None:
        log_errors(errors, execution_context.context if execution_context else None)


def build_schema(limits: Limits) -> strawberry.Schema:
    """Build the schema with its error coding and query limits; plain fields take a fast path."""
    describe_enum_values()
    schema = GatewaySchema(
        query=Query,
        mutation=Mutation,
        subscription=Subscription,
        config=StrawberryConfig(auto_camel_case=True, scalar_map=SCALARS),
        # Factories, not instances: strawberry builds fresh extensions for every request.
        extensions=[
            ErrorCodes,
            lambda: Preflight(limits=limits),  # one operation, introspection, roles, inputs
            lambda: QueryLimits(limits=limits),
            CompiledReads,  # after QueryLimits: only operations that passed it compile
            lambda: ParseErrorsInside(maxsize=512),
            lambda: ValidationCache(maxsize=512),
        ],
        execution_context_class=PlainExecutor,
    )
    install_plain_resolvers(schema)
    return schema


def sdl() -> str:
    """The schema's SDL as committed in schema.graphql (limits do not change the SDL)."""
    schema = build_schema(Limits(max_depth=10, max_aliases=30, max_tokens=2000, max_cost=50_000))
    return schema.as_str() + "\n"
