"""One execution and one serialised payload per event for subscribers of the same selection.

Every subscriber keeps its own stream (its hub queue, its current state first, its RESYNC, its
SLOW_SUBSCRIBER cut-off, its `complete`), but a change the hub delivers is the SAME record object
for all of them, and the schema turns it into the same GraphQL object (schema/subscriptions.py).
Subscribers whose operations are equal — same principal (so same tenant and role), document,
operationName and variables — would execute the same selection over the same object and get the
same bytes, so the first of them to reach an event executes it and serialises `{"data": ...}`
once; the others await that result and only wrap the shared text in their own
`{"id", "type": "next", "payload"}` frame.

A result with errors is never shared: each subscriber then executes on its own, so error
processing (logging, masking with the connection's request id) stays per subscriber.
"""

from __future__ import annotations

import asyncio
import copy
from collections import OrderedDict
from collections.abc import Awaitable, Callable, Hashable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, cast

import orjson
from graphql import ExecutionResult, OperationType
from prometheus_client import Counter
from strawberry.schema.schema import StrawberryGraphQLCoreExecutionContext

from resolvers.auth import Principal

if TYPE_CHECKING:
    from strawberry.schema import BaseSchema

__all__ = [
    "SHARE_KEY",
    "SharedEventExecutor",
    "SharedResults",
    "operation_identity",
    "results",
    "share_key",
    "sharing_schema",
]

EXECUTIONS = Counter(
    "gateway_subscription_executions_total",
    "Subscription events executed for a group of equal operations (once per event and group)",
)

SHARE_KEY = "gateway.fanout.share_key"  # the operation_extensions entry carrying the group key
_CAPACITY = 256  # events x groups kept (initial states too); eviction only costs an execution


def operation_identity(
    query: str, operation_name: str | None, variables: dict[str, object] | None
) -> tuple[str, str | None, str] | None:
    """An operation's identity: document, operation name, variables as canonical JSON.

    Equal identities run the same operation (variable key order does not matter); None when the
    variables cannot be serialised. The JSON is kept as text: the bytes orjson returns hold a
    4 KiB buffer each, and an identity lives as long as its subscription or cache entry.
    """
    try:
        canonical = orjson.dumps(variables or {}, option=orjson.OPT_SORT_KEYS).decode()
    except TypeError:
        return None
    return (query, operation_name, canonical)


def share_key(
    principal: Principal | None,
    query: str,
    operation_name: str | None,
    variables: dict[str, object] | None,
) -> Hashable | None:
    """The group of an operation: equal keys select the same data the same way (None: alone)."""
    identity = operation_identity(query, operation_name, variables)
    if principal is None or identity is None:
        return None
    return (principal, *identity)


@dataclass(eq=False, slots=True)
class _Entry:
    """One event's execution for one group, and its payload text once somebody serialised it."""

    root: object  # kept alive so that id(root) cannot be reused while the entry exists
    done: asyncio.Future[ExecutionResult | None]  # None: the first execution did not finish
    payload: str | None = None
    data: Any = field(default=None)


class SharedResults:
    """A bounded LRU of per-(group, event) executions and their serialised payloads."""

    def __init__(self, capacity: int = _CAPACITY) -> None:
        self._capacity = capacity
        self._entries: OrderedDict[tuple[Hashable, int], _Entry] = OrderedDict()
        self._by_data: dict[int, _Entry] = {}
        self.executions = 0  # for tests: how many events were really executed
        self.shared = 0

    async def execute(
        self, key: Hashable, root: object, run: Callable[[], Awaitable[ExecutionResult]]
    ) -> ExecutionResult:
        """The result of `run` for this group and event; run once however many ask."""
        slot = (key, id(root))
        entry = self._entries.get(slot)
        if entry is not None and entry.root is root:
            done = entry.done
            # shield: a follower that is cancelled must not cancel the others' wait
            result = done.result() if done.done() else await asyncio.shield(done)
            if result is not None and not result.errors:
                self.shared += 1
                return result
            return await run()  # the first one failed: this subscriber finds out for itself
        entry = _Entry(root, asyncio.get_running_loop().create_future())
        self._store(slot, entry)
        self.executions += 1
        EXECUTIONS.inc()
        # The first subscriber executes inline (usually without suspending, so the others
        # find the result already there); if it fails or is cancelled the others run their own.
        try:
            result = await run()
        except BaseException:
            entry.done.set_result(None)
            raise
        entry.done.set_result(result)
        if not result.errors and result.data is not None:
            entry.data = result.data
            self._by_data[id(result.data)] = entry
        return result

    def payload(self, data: object) -> str | None:
        """`{"data": data}` as JSON text, serialised once per shared result; None if not shared."""
        entry = self._by_data.get(id(data))
        if entry is None or entry.data is not data:
            return None
        if entry.payload is None:
            entry.payload = orjson.dumps({"data": data}).decode()
        return entry.payload

    def _store(self, slot: tuple[Hashable, int], entry: _Entry) -> None:
        self._entries[slot] = entry
        while len(self._entries) > self._capacity:
            _, old = self._entries.popitem(last=False)
            if old.data is not None:
                self._by_data.pop(id(old.data), None)


results = SharedResults()


class _SharedEvent:
    """Stands in for graphql-core's per-event executor: builds the real one only if it runs."""

    __slots__ = ("key", "parent", "payload")

    def __init__(self, parent: SharedEventExecutor, key: Hashable, payload: object) -> None:
        self.parent = parent
        self.key = key
        self.payload = payload

    def execute_operation(self, serially: bool | None = None) -> Awaitable[ExecutionResult]:
        return results.execute(self.key, self.payload, self._run)

    async def _run(self) -> ExecutionResult:
        executor = StrawberryGraphQLCoreExecutionContext.build_per_event_executor(
            self.parent, self.payload
        )
        result = executor.execute_operation(False)
        if isinstance(result, Awaitable):
            result = await result
        return cast("ExecutionResult", result)


class SharedEventExecutor(StrawberryGraphQLCoreExecutionContext):
    """Strawberry's executor; a subscription event of a keyed operation runs once per group.

    graphql-core maps each source event with `execute_subscription_event(
    build_per_event_executor(payload))`, i.e. `.execute_operation(False)` on the per-event
    executor; a keyed subscription gets a `_SharedEvent` there instead of a copy of itself.
    """

    def build_per_event_executor(self, payload: Any) -> Any:
        key = (self.operation_extensions or {}).get(SHARE_KEY)
        if key is None or self.operation.operation is not OperationType.SUBSCRIPTION:
            return super().build_per_event_executor(payload)
        return _SharedEvent(self, key, payload)


_SHARING: dict[int, tuple[BaseSchema, BaseSchema]] = {}


def sharing_schema(schema: BaseSchema) -> BaseSchema:
    """The schema (a shallow copy) whose `stream` executes subscription events per group."""
    known = _SHARING.get(id(schema))
    if known is not None and known[0] is schema:
        return known[1]
    twin = copy.copy(schema)
    twin.execution_context_class = SharedEventExecutor  # type: ignore[attr-defined]
    _SHARING[id(schema)] = (schema, twin)
    return twin
