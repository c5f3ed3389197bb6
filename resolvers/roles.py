"""Who may run which mutation, checked before any argument is looked at (issue #13 item 14).

A use case validates its input before it opens its unit of work, so a caller without the role
would learn the rules from a BAD_USER_INPUT. The schema calls `authorize_mutation` for each of
the operation's root fields before execution starts: a caller who may not run one of them gets
FORBIDDEN and nothing runs. unit_of_work checks the same table again (defence in depth): this
table is the one place a mutation's role is stated (its description's `[ROLE]` is kept equal by
tests/gateway/test_role_first.py).
"""

from __future__ import annotations

from collections.abc import Mapping
from types import MappingProxyType

from resolvers.auth import Principal, Role, require_role
from resolvers.context import Context

__all__ = ["MUTATION_ROLES", "authorize_mutation"]

# The minimum role of every mutation (API.md § Mutation). A mutation missing here needs ADMIN.
MUTATION_ROLES: Mapping[str, Role] = MappingProxyType(
    {
        "acknowledgeIncident": Role.OPERATOR,
        "resolveIncident": Role.OPERATOR,
        "closeIncident": Role.OPERATOR,
        "createPostmortemStub": Role.OPERATOR,
        "addIncidentEvent": Role.OPERATOR,
        "createLimit": Role.ADMIN,
        "updateLimit": Role.ADMIN,
        "disableLimit": Role.ADMIN,
        "recordLimitBreach": Role.INGEST,
        "requestOverride": Role.OPERATOR,
        "approveOverride": Role.ADMIN,
        "rejectOverride": Role.ADMIN,
        "cancelOverride": Role.OPERATOR,
        "createRecoveryScope": Role.OPERATOR,
        "executeWithScope": Role.OPERATOR,
        "revokeScope": Role.OPERATOR,
        "testRecoveryScope": Role.OPERATOR,
        "recordThresholdSignal": Role.INGEST,
        "acknowledgeThresholdSignal": Role.OPERATOR,
        "createLesson": Role.INGEST,
        "convertLessonToDraft": Role.OPERATOR,
        "deferLesson": Role.OPERATOR,
        "dismissLesson": Role.OPERATOR,
        "reactivateLesson": Role.OPERATOR,
        "exportIncidentBundle": Role.OPERATOR,
        "reportBreakerDrift": Role.INGEST,
        "reportBreakerSchemaErrors": Role.INGEST,
        "disableCircuitBreaker": Role.ADMIN,
        "enableCircuitBreaker": Role.ADMIN,
        "retryFailedAlerts": Role.ADMIN,
        "ingestIncidentSignal": Role.INGEST,
        "createIncidentFromCostAnomaly": Role.INGEST,
        "recordPolicyViolation": Role.INGEST,
        "recordLlmFailure": Role.INGEST,
        "recordRunOutcome": Role.INGEST,
    }
)


def authorize_mutation(ctx: Context, name: str) -> Principal:
    """The caller, unless it may not run the named mutation (Unauthenticated/Forbidden)."""
    return require_role(ctx, MUTATION_ROLES.get(name, Role.ADMIN))
