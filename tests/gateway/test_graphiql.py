"""GraphiQL works offline: the page loads only assets this gateway serves."""

from __future__ import annotations

import re


async def test_graphiql_page_uses_only_local_assets(client):
    # when a browser opens /graphql without a query (and without a token)
    page = await client.get("/graphql", headers={"accept": "text/html"})
    # then it gets the IDE, and every script and stylesheet is served by us
    assert page.status_code == 200
    assert "graphiql" in page.text.lower()
    assert "unpkg.com" not in page.text
    assets = re.findall(r'(?:src|href)="(/graphiql/[^"]+)"', page.text)
    assert len(assets) == 7
    for asset in assets:
        response = await client.get(asset)
        assert response.status_code == 200, asset
        assert len(response.content) > 500
