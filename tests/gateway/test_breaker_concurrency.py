"""20 racing breaker mutations over HTTP leave one consistent state (DOMAIN.md §3.7, §5)."""

from __future__ import annotations

import asyncio

from tests.factories_breaker import (
    DISABLE,
    DRIFT,
    ENABLE,
    audits,
    breaker_incidents,
    breakers,
    outbox,
)
from tests.helpers import gql


async def test_twenty_parallel_mutations_keep_the_breaker_consistent(client, engine):
    # given a mix of disables (some with the same reason), enables and failing drift reports
    calls = []
    for i in range(20):
        kind = ("disable", "enable", "drift")[i % 3]
        if kind == "disable":
            calls.append(gql(client, DISABLE, {"reason": f"reason {i % 4}"}))
        elif kind == "enable":
            calls.append(gql(client, ENABLE, {"reason": f"enable {i}"}))
        else:
            calls.append(gql(client, DRIFT, {"score": 0.9}, role="INGEST"))
    # when they all run at once
    bodies = await asyncio.gather(*calls)
    # then every call succeeded and wrote its one audit row
    assert all("errors" not in b for b in bodies), [b for b in bodies if "errors" in b]
    changes = [next(iter(b["data"].values())) for b in bodies]
    assert len(await audits(engine)) == 20
    # one breaker row; OPEN exactly when one unresolved incident is its current incident
    [row] = await breakers(engine)
    incidents = await breaker_incidents(engine)
    unresolved = [i for i in incidents if not i.resolved]
    if row.disabled:
        assert [i.id for i in unresolved] == [row.incident_id]
    else:
        assert unresolved == [] and row.incident_id is None
    # exactly one DISABLE alert per trip and one ENABLE alert per re-enable
    alerts = await outbox(engine)
    disables = [a for a in alerts if a.alert_type == "DISABLE"]
    enables = [a for a in alerts if a.alert_type == "ENABLE"]
    assert sorted(a.incident_id for a in disables) == sorted(i.id for i in incidents)
    reenabled = [
        i for i in incidents if i.resolved and i.resolution_notes != "Superseded by manual disable"
    ]
    assert sorted(a.incident_id for a in enables) == sorted(i.id for i in reenabled)
    # and every changed=true answer is one transition with one alert
    assert sum(c["changed"] for c in changes) == len(alerts)
    assert len(incidents) >= 1
