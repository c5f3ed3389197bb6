"""Run as a script by test_new_column.py: a column added to `incidents` reaches the API by itself.

The table gains the column here, before anything imports the mapping or the schema (as a new
`Column(...)` line in drivers/tables.py would), and the incidents root list gains one filter on
it (as one `ArgFilter` line in drivers/mapping.py would); nothing else is edited. The script serves the
real app on a database that a scratch migration gave the column, reads the column through both
read paths (plain and filtered) and introspection, and prints what it saw as JSON.
"""

from __future__ import annotations

import asyncio
import sys
from typing import Any

import orjson
import sqlalchemy as sa

from drivers import tables as t

# Never imported by the tests (that would extend the table for the whole session): run only.
if __name__ != "__main__":
    raise ImportError("tests/schema/scratch_column.py runs as a script")
URL, COLUMN, COMMENT, FILTER_DESCRIPTION = sys.argv[1:5]

t.incidents.append_column(sa.Column(COLUMN, sa.Integer, comment=COMMENT))

# Below this line every module sees the extended table.
from drivers import mapping  # noqa: E402

# The one mapping line a filter takes (a filter is a decision: which column, which operator):
# in drivers/mapping.py it is an entry of ROOT_LISTS[("Query", "incidents")].filters.
mapping.ROOT_LISTS[("Query", "incidents")].filters[COLUMN] = mapping.ArgFilter(  # type: ignore[index]
    t.incidents.c[COLUMN], "gte", int, FILTER_DESCRIPTION
)

from drivers.db import make_engine  # noqa: E402
from gateway.settings import Settings  # noqa: E402
from tests.factories import incident_row  # noqa: E402
from tests.helpers import JWT_SECRET, serve, token  # noqa: E402

QUERY = """
query($id: ID!) {
  incident(id: $id) { id blastRadius }
  incidents(first: 5) { nodes { title blastRadius } }
  filtered: incidents(first: 5, filter: {blastRadius: 5}) { nodes { title blastRadius } }
  __type(name: "Incident") {
    fields { name description type { kind name ofType { name } } }
  }
  filterInput: __type(name: "IncidentFilter") {
    inputFields { name description type { kind name } }
  }
}
"""


async def main(url: str) -> dict[str, Any]:
    engine = make_engine(url)
    row = incident_row()
    row[COLUMN] = 7
    async with engine.begin() as conn:
        await conn.execute(sa.insert(t.incidents).values(row))
        await conn.execute(sa.insert(t.incidents).values(incident_row(title="Unknown reach")))
        small = incident_row(title="Small reach")
        small[COLUMN] = 3
        await conn.execute(sa.insert(t.incidents).values(small))
    await engine.dispose()
    settings = Settings(
        database_url=url,
        migrate_on_start=False,
        jwt_secret=JWT_SECRET,
        api_key_cache_seconds=0,
        gateway_background_jobs=False,
        gateway_compiled_reads=False,
    )
    seen: dict[str, Any] = {}
    body = {"query": QUERY, "variables": {"id": row["id"]}}
    headers = {"authorization": f"Bearer {token()}"}
    plain = {"query": QUERY.split("__type", maxsplit=1)[0] + "}", "variables": body["variables"]}
    for compiled in (False, True):
        mode = settings.model_copy(update={"gateway_compiled_reads": compiled})
        async with serve(mode) as http:
            # Introspection runs on the resolver path; the plain read compiles when it can.
            if not compiled:
                response = await http.post("/graphql", json=body, headers=headers)
                seen["introspected"] = response.json()
            response = await http.post("/graphql", json=plain, headers=headers)
            seen[response.headers["x-gateway-read-path"]] = response.json()
    return seen


if __name__ == "__main__":
    sys.stdout.buffer.write(orjson.dumps(asyncio.run(main(URL))))
