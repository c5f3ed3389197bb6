"""ASGI composition: routes, the request pipeline and the lifespan that owns the database pool."""

from __future__ import annotations

import asyncio
import gc
import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import TYPE_CHECKING, Any

from sqlalchemy.exc import SQLAlchemyError
from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.routing import Mount, Route, WebSocketRoute
from starlette.staticfiles import StaticFiles

from drivers.db import make_engine, timeout_setting
from drivers.migrate import upgrade_head
from drivers.one_statement import create_statement_pool
from gateway.auth import Authentication, Authenticator
from gateway.body_limits import RequestBodyLimits
from gateway.database import resolve_database_url
from gateway.fast_lane import FastLane
from gateway.graphiql import ASSETS_DIR, GraphiQLPage
from gateway.graphql_app import GraphQLApp
from gateway.health import healthz, readyz
from gateway.idempotency import IdempotencyKeys
from gateway.metrics import metrics
from gateway.notifications import NotificationHub
from gateway.pipeline import GRAPHQL_PATH
from gateway.prepared_reads import BodyKeys, PreparedReads
from gateway.prepared_writes import PreparedWrites
from gateway.publisher import notify_mode_options, publisher_for
from gateway.replica import ReadYourWrites, open_read_side
from gateway.request_context import RequestContextMiddleware
from gateway.responses import internal_error
from gateway.runtime import Runtime
from gateway.session_watch import SessionWatch
from gateway.settings import Settings, breaker_settings, get_settings
from gateway.sse import EventStreams
from gateway.tracing import TracingMiddleware, tracing_for
from gateway.trusted_documents import (
    DOCUMENT_IDS,
    DocumentCache,
    DocumentIds,
    TrustedDocuments,
    load_documents,
)
from gateway.worker import Runner, default_jobs
from resolvers.compiled import PreparedCache
from resolvers.errors import GatewayError
from schema import Limits, build_schema
from schema.compiled import warm_plans
from schema.prepared_writes import WritePlans

if TYPE_CHECKING:
    from opentelemetry.sdk.trace.export import SpanExporter

__all__ = ["create_app"]

log = logging.getLogger("gateway.app")


def _engine_options(settings: Settings) -> dict[str, Any]:
    """Pool options of the primary and the read pool.

    No pre-ping: SQLAlchemy's asyncpg ping cost a round trip per checkout (three on the primary,
    where it wraps `;` in BEGIN/ROLLBACK). make_engine's checkout hook replaces a connection the
    server closed while it was idle, without a round trip (discard_closed_on_checkout).
    """
    return {
        "pool_size": settings.db_pool_size,
        "max_overflow": settings.db_max_overflow,
        "pool_timeout": settings.db_pool_timeout,
        "pool_pre_ping": False,
        "prepared_statements": settings.db_prepared_statements,
        "connect_args": {"server_settings": timeout_setting(settings.db_statement_timeout_ms)},
    }


# Young-generation size before a collection (CPython's default is 700). See _tune_gc.
GC_GEN0_THRESHOLD = 10_000


def _tune_gc() -> None:
    """Make the cyclic GC cheap for a server that allocates many short-lived objects per request.

    Profiling the resolver path showed about 40 % of a request's CPU in the GC: graphql-core and
    Strawberry allocate thousands of objects per request, so CPython's default thresholds ran a
    young collection every 700 allocations and, every ~100 of those, a full collection that
    walked the whole (mostly immortal) heap of modules, schema and metadata. Freezing what exists
    after start-up moves it out of every future collection, and a larger young generation runs
    them far less often; the garbage of one request is a few MB at most.
    """
    gc.collect()
    gc.freeze()
    _, gen1, gen2 = gc.get_threshold()
    gc.set_threshold(max(GC_GEN0_THRESHOLD, gc.get_threshold()[0]), gen1, gen2)


@asynccontextmanager
async def _lifespan_for(settings: Settings) -> AsyncIterator[dict[str, Any]]:
    url = await asyncio.to_thread(resolve_database_url, settings)
    # LISTEN and migrations need a session of their own: never through a transaction pooler.
    direct_url = settings.database_listen_url or url
    if settings.migrate_on_start:
        await asyncio.to_thread(upgrade_head, direct_url)
    primary = make_engine(
        url, **_engine_options(settings), execution_options=notify_mode_options(settings)
    )
    # addIncidentEvent's and requestOverride's statements: a plain asyncpg pool, always on the
    # primary (drivers/one_statement.py); it connects on first use, like the engines.
    one_statement = await create_statement_pool(
        url,
        size=settings.db_pool_size,
        statement_timeout_ms=settings.db_statement_timeout_ms,
        prepared_statements=settings.db_prepared_statements,
        notify_mode=settings.notify_mode,
        acquire_timeout=settings.db_pool_timeout,
    )
    # Reads: their own AUTOCOMMIT pools, on the replica if there is one (gateway/replica.py).
    reads = await open_read_side(
        settings, url, primary, _engine_options(settings), one_statement=one_statement
    )
    auth = Authenticator(
        primary,
        jwt_secret=settings.jwt_secret,
        jwt_audience=settings.jwt_audience,
        jwt_issuer=settings.jwt_issuer,
        cache_seconds=settings.api_key_cache_seconds,
    )
    runtime = Runtime(
        settings=settings,
        database_url=url,
        db=reads.db,
        replica=reads.watcher,
        auth=auth,
        sessions=SessionWatch(auth, settings.api_key_cache_seconds),
        hub=NotificationHub(
            direct_url,
            # Notified rows are read from the primary: a read replica may lag behind the commit
            # that sent the notification.
            primary.execution_options(isolation_level="AUTOCOMMIT"),
            queue_size=settings.subscriber_queue_size,
            ping_interval=settings.listener_ping_seconds,
            backoff_max=settings.listener_backoff_max_seconds,
        ),
        breaker=breaker_settings(settings),
    )
    await runtime.hub.start()
    publisher = publisher_for(settings, direct_url)
    if publisher is not None:
        publisher.start()
    await reads.start()
    _tune_gc()
    jobs = Runner(primary, default_jobs(settings)) if settings.gateway_background_jobs else None
    if jobs is not None:
        jobs.start()
    try:
        yield {"runtime": runtime}
    finally:
        if jobs is not None:
            await jobs.stop()
        if publisher is not None:
            await publisher.stop()
        await runtime.hub.stop()
        await runtime.sessions.stop()
        await reads.close()
        await one_statement.close()
        await primary.dispose()


async def _warm_documents(runtime: Runtime, documents: DocumentCache, schema: Any) -> None:
    """Know every registered document, and compile the plans of their reads, before serving.

    A failure only costs the head start: documents are then looked up on first use.
    """
    try:
        texts = await load_documents(runtime.db.primary, documents)
    except (GatewayError, SQLAlchemyError) as exc:  # e.g. MIGRATE_ON_START=false, not migrated
        log.warning("trusted documents not loaded at start-up: %s", exc)
        return
    plans = warm_plans(schema, texts, runtime.db.reads.dialect) if texts else 0
    log.info("trusted documents: %d loaded, %d compiled read plans", len(texts), plans)


def create_app(
    settings: Settings | None = None,
    *,
    demo_token: str | None = None,
    span_exporter: SpanExporter | None = None,
) -> Starlette:
    """Build the ASGI app; nothing touches the database until the lifespan starts.

    `demo_token` (from `gateway serve --demo` on a loopback host) is filled into GraphiQL's
    Authorization header so a newcomer's first page works. `span_exporter` receives the traces
    instead of the exporter OTEL_TRACES names (tests pass an in-memory one).
    """
    settings = settings or get_settings()
    tracing = tracing_for(settings, span_exporter)
    limits = Limits(
        max_depth=settings.max_query_depth,
        max_aliases=settings.max_aliases,
        max_tokens=settings.max_tokens,
        max_cost=settings.max_query_cost,
        introspection=settings.introspection,
    )
    schema = build_schema(limits)
    prepared = PreparedCache()  # bound plans of compiled reads, filled by the GraphQL view
    # The fast lane (gateway/fast_lane.py) is left out where a step could decide otherwise for
    # the same bytes: with tracing (a span per request) or TRUSTED_DOCUMENTS=only (a per-request
    # check). Its two halves: exact bodies of answered compiled reads -> their keys, and the
    # mutation plans (shared with the pipeline's PreparedWrites).
    lane = tracing is None and settings.trusted_documents != "only"
    bodies = BodyKeys() if settings.gateway_compiled_reads and lane else None
    plans = WritePlans(schema, limits) if settings.mutation_fast_path else None
    graphql = GraphQLApp(schema, prepared=prepared)
    documents = DocumentCache()  # trusted documents this process knows, by SHA-256
    document_ids = DocumentIds(settings.trusted_documents, documents)

    @asynccontextmanager
    async def lifespan(_: Starlette) -> AsyncIterator[dict[str, Any]]:
        if tracing is not None:
            tracing.instrument()
        try:
            async with _lifespan_for(settings) as state:
                if settings.trusted_documents != "off":
                    await _warm_documents(state["runtime"], documents, schema)
                yield {**state, DOCUMENT_IDS: document_ids}
        finally:
            if tracing is not None:
                await tracing.shutdown()

    return Starlette(
        routes=[
            Route(GRAPHQL_PATH, graphql, methods=["GET", "POST"]),
            WebSocketRoute(GRAPHQL_PATH, graphql),
            Route("/healthz", healthz),
            Route("/readyz", readyz),
            Route("/metrics", metrics),
            Mount("/graphiql", StaticFiles(directory=ASSETS_DIR), name="graphiql"),
        ],
        # The request pipeline (ARCHITECTURE.md), outermost first. Each step is one module and
        # acts on HTTP requests to /graphql only; the last step is the GraphQL view above.
        middleware=[
            # A remembered read body or a planned mutation: straight to its plan.
            *(
                [
                    Middleware(
                        FastLane,
                        prepared=prepared,
                        bodies=bodies,
                        plans=plans,
                        max_bytes=settings.max_request_bytes,
                    )
                ]
                if lane and (bodies is not None or plans is not None)
                else []
            ),
            Middleware(RequestContextMiddleware),  # request id, status and latency metrics
            # One span per request when OTEL_TRACES is on; absent (no cost) when it is off.
            *([Middleware(TracingMiddleware, tracer=tracing.tracer)] if tracing else []),
            Middleware(GraphiQLPage, enabled=settings.graphiql, demo_token=demo_token),
            Middleware(RequestBodyLimits, max_bytes=settings.max_request_bytes),
            Middleware(Authentication),
            Middleware(TrustedDocuments, ids=document_ids),
            Middleware(EventStreams, view=graphql),  # Accept: text/event-stream (graphql-sse)
            Middleware(IdempotencyKeys),
            Middleware(ReadYourWrites),  # replica or primary; X-Gateway-LSN
            # Mutations from their per-document plans (MUTATION_FAST_PATH), before the
            # repeated-read shortcut, which only ever serves queries.
            *(
                [Middleware(PreparedWrites, plans=plans, prepared=prepared)]
                if plans is not None
                else []
            ),
            Middleware(PreparedReads, prepared=prepared, bodies=bodies),  # repeated reads
        ],
        # Anything unhandled answers JSON INTERNAL with the request id, never text/plain.
        exception_handlers={Exception: internal_error},
        lifespan=lifespan,
    )


def __getattr__(name: str) -> Any:
    # `uvicorn gateway.app:app` builds the app on first access, not at import time.
    if name == "app":
        return create_app()
    raise AttributeError(name)
