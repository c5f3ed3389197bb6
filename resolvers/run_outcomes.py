"""Run outcome → incident (DOMAIN.md §3.13): one RUN incident per failed run."""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from datetime import UTC, datetime

from drivers import incidents as idb
from drivers import runs as rdb
from drivers.mapping import QUERY_RUN
from drivers.records import IncidentRecord, RunRecord
from drivers.rules import runs as rules
from resolvers.context import Context
from resolvers.errors import BadUserInput, Conflict
from resolvers.unit_of_work import as_json, unit_of_work
from resolvers.validation import check_length

__all__ = ["RunOutcomeResult", "record_run_outcome"]


@dataclass(frozen=True, slots=True, kw_only=True)
class RunOutcomeResult:
    outcome: str
    run: RunRecord
    incident: IncidentRecord | None = None
    error_code: str | None = None
    proposal_id: str | None = None
    proposal_type: str | None = None
    suggested_action: str | None = None


async def record_run_outcome(ctx: Context, run_id: str) -> RunOutcomeResult:
    """Turn a terminal run's outcome into its incident (and draft proposal when HIGH+)."""
    if not run_id.strip():
        raise BadUserInput("runId must not be blank", field="runId")
    check_length("runId", run_id, 128)
    async with unit_of_work(ctx, "recordRunOutcome") as uow:
        run = await rdb.fetch_run_for_update(uow.conn, tenant_id=uow.tenant_id, run_id=run_id)
        outcome = rules.outcome_for(run.status)
        if outcome is None:
            raise Conflict(
                f"run {run_id} is {run.status}: it has no outcome yet",
                reason="RUN_NOT_TERMINAL",
                status=run.status,
            )
        if outcome == "SUCCESS":  # §8.2: successes create no incident
            uow.audit("runs", run.id, before=as_json(run), after={"outcome": str(outcome)})
            return RunOutcomeResult(outcome=str(outcome), run=run)
        if await rdb.has_run_incident(uow.conn, tenant_id=uow.tenant_id, run_id=run_id):
            raise Conflict(
                f"run {run_id} already has its incident", reason="DUPLICATE_RUN_INCIDENT"
            )
        rule = rules.run_incident_rule(run.id, run.error_message)
        now = datetime.now(UTC)
        incident = await idb.insert_incident(
            uow.conn,
            tenant_id=uow.tenant_id,
            values={
                "id": f"inc_{secrets.token_hex(8)}",
                "title": rule.title,
                "severity": rule.severity,
                "status": "OPEN",
                "trigger_type": "RUN_FAILURE",
                "trigger_value": str(rule.error_code),
                "category": rule.category,
                "source_type": "RUN",
                "cause_type": "LLM_RUN",
                "source_run_id": run.id,
                "description": rule.description,
                "error_code": str(rule.error_code),
                "error_message": run.error_message,
                "impact_scope": "SINGLE_RUN",
                "affected_agent_id": run.agent_id,
                "affected_count": 1,
                "started_at": now,
                "created_at": now,
                "updated_at": now,
            },
        )
        event = await idb.insert_event(
            uow.conn,
            tenant_id=uow.tenant_id,
            incident_id=incident.id,
            event_type="INCIDENT_CREATED",
            description=f"Incident created: {incident.title}",
            data={"run_id": run.id, "outcome": str(outcome), "error_code": str(rule.error_code)},
            now=now,
        )
        run_after = await rdb.increment_incident_count(
            uow.conn, tenant_id=uow.tenant_id, run_id=run.id, now=now
        )
        proposal: tuple[str | None, str | None, str | None] = (None, None, None)
        if rule.severity in ("HIGH", "CRITICAL"):
            kind, title, action = rules.proposal_for(rule.error_code, rule.severity, incident.id)
            proposal_id = await rdb.insert_incident_proposal(
                uow.conn, tenant_id=uow.tenant_id, incident_id=incident.id, title=title, now=now
            )
            proposal = (proposal_id, kind, action)
        uow.audit("incidents", incident.id, before=None, after=as_json(incident))
        uow.notify("INCIDENT_CREATED", incident.id)
        uow.notify("INCIDENT_EVENT_ADDED", event.id)
    ctx.loaders.one(QUERY_RUN).clear(run_id).prime(run_id, run_after)
    return RunOutcomeResult(
        outcome=str(outcome),
        run=run_after,
        incident=incident,
        error_code=str(rule.error_code),
        proposal_id=proposal[0],
        proposal_type=proposal[1],
        suggested_action=proposal[2],
    )
