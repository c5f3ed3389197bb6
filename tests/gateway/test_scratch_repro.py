from __future__ import annotations
import time
import httpx
from sqlalchemy.ext.asyncio import AsyncEngine
from drivers import tables as t
from tests.factories import incident_row, insert_rows
from tests.helpers import gql, token

async def test_repro(client: httpx.AsyncClient, compiled_client: httpx.AsyncClient, engine: AsyncEngine) -> None:
    inc = incident_row()
    await insert_rows(engine, t.incidents, [inc])
    two = "query A { viewer { role } } query B { incidents { totalCount } }"
    print("multi-op resolver", await gql(client, two))
    print("multi-op compiled", await gql(compiled_client, "query A { incidents { totalCount } } query B { incidents { nodes { id } } }"))
    print("multi-op compiled2", await gql(compiled_client, "query A { incidents { totalCount } } query B { incidents { nodes { id } } }"))
    print("nul filter resolver", await gql(client, 'query($c:String!){ incidents(filter:{category:[$c]}) { totalCount } }', {"c": "a\u0000b"}))
    print("nul filter compiled", await gql(compiled_client, 'query($c:String!){ incidents(filter:{category:[$c]}) { totalCount } }', {"c": "a\u0000b"}))
    print("nul id", await gql(client, 'query($c:ID!){ incident(id:$c) { id } }', {"c": "a\u0000b"}))
    print("nul id compiled", await gql(compiled_client, 'query($c:ID!){ incident(id:$c) { id } }', {"c": "a\u0000b"}))
    print("nul mut", await gql(client, 'mutation($i:ID!){ addIncidentEvent(incidentId:$i, input:{eventType:NOTE, description:"x\\u0000y"}) { id } }', {"i": inc["id"]}))
    print("big json", await gql(client, 'mutation($i:ID!){ addIncidentEvent(incidentId:$i, input:{eventType:NOTE, description:"xy", data:{n:12345678901234567890123}}) { id } }', {"i": inc["id"]}))
    print("big json var", await gql(client, 'mutation($i:ID!, $d: JSON){ addIncidentEvent(incidentId:$i, input:{eventType:NOTE, description:"xy", data:$d}) { id } }', {"i": inc["id"], "d": {"n": 12345678901234567890123}}))
    print("nul json key", await gql(client, 'mutation($i:ID!, $d: JSON){ addIncidentEvent(incidentId:$i, input:{eventType:NOTE, description:"xy", data:$d}) { id } }', {"i": inc["id"], "d": {"n\u0000": 1}}))
    print("viewer createLimit", await gql(client, 'mutation { createLimit(input:{name:"", limitCategory:BUDGET, limitType:"X", maxValue:"1"}) { id } }', role="VIEWER"))
    q = "{" + " ".join(f"a{i}: __schema {{ types {{ fields {{ args {{ name }} }} }} }}" for i in range(5)) + "}"
    t0 = time.process_time(); r = await client.post("/graphql", json={"query": q}, headers={"authorization": f"Bearer {token()}"}); print("5 introspection", time.process_time() - t0, len(r.content))
