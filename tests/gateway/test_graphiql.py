"""GraphiQL: works offline, opens with the demo key in demo mode, else says where a token goes."""

from __future__ import annotations

import json
import re
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import httpx
from asgi_lifespan import LifespanManager

from gateway.app import create_app
from gateway.settings import Settings

BROWSER = {"accept": "text/html,application/xhtml+xml,*/*;q=0.8"}
DEMO_TOKEN = "gwk_demo-key-for-the-test"


@asynccontextmanager
async def _serve(settings: Settings, demo_token: str | None) -> AsyncIterator[httpx.AsyncClient]:
    app = create_app(settings, demo_token=demo_token)
    async with (
        LifespanManager(app) as manager,
        httpx.AsyncClient(
            transport=httpx.ASGITransport(app=manager.app), base_url="http://127.0.0.1:8000"
        ) as http,
    ):
        yield http


def _config(page: str) -> dict[str, object]:
    """The configuration object the page's script hands to GraphiQL."""
    found = re.search(r"const GATEWAY = (\{.*?\});\n", page)
    assert found, "the page carries no GATEWAY configuration"
    config: dict[str, object] = json.loads(found.group(1))
    return config


async def test_graphiql_page_uses_only_local_assets(client):
    # when a browser opens /graphql without a query (and without a token)
    page = await client.get("/graphql", headers=BROWSER)
    # then it gets the IDE, and every script and stylesheet is served by us
    assert page.status_code == 200
    assert page.headers["content-type"] == "text/html; charset=utf-8"
    assert "graphiql" in page.text.lower()
    assert "unpkg.com" not in page.text
    assets = re.findall(r'(?:src|href)="([^"]+\.(?:js|css))"', page.text)
    assert len(assets) == 6
    for asset in assets:
        assert asset.startswith("/graphiql/"), asset
        response = await client.get(asset)
        assert response.status_code == 200, asset
        assert len(response.content) > 500


async def test_in_demo_mode_the_page_opens_with_the_demo_key(settings):
    async with _serve(settings, DEMO_TOKEN) as http:
        page = await http.get("/graphql", headers=BROWSER)
        # and the key the page sends works
        served = await http.post(
            "/graphql",
            json={"query": "{ __typename }"},
            headers=json.loads(str(_config(page.text)["headers"])),
        )

    assert page.status_code == 200
    assert page.headers["cache-control"] == "no-store"
    headers = json.loads(str(_config(page.text)["headers"]))
    assert headers == {"Authorization": f"Bearer {DEMO_TOKEN}"}
    assert 'id="token-hint"' not in page.text
    # the demo key is not a real one here: the point is that the page sent it
    assert served.status_code == 401
    assert served.json()["errors"][0]["message"] == "unknown or revoked API key"


async def test_without_a_demo_key_the_page_says_where_a_token_goes(client):
    page = await client.get("/graphql", headers=BROWSER)

    assert page.status_code == 200
    config = _config(page.text)
    assert config["headers"] is None
    assert json.loads(str(config["placeholder"])) == {"Authorization": "Bearer <token>"}
    hint = re.search(r'<p id="token-hint">(.*?)</p>', page.text, re.S)
    assert hint, "no visible hint on the page"
    text = re.sub(r"<[^>]+>", "", hint.group(1))
    assert "Headers tab" in text
    assert "Authorization" in text
    assert "Bearer &lt;token&gt;" in text
    assert "gateway keys create" in text


async def test_a_token_cannot_close_the_script_it_is_written_into(settings):
    async with _serve(settings, "gwk_</script><script>alert(1)</script>") as http:
        page = await http.get("/graphql", headers=BROWSER)

    assert "</script><script>alert(1)" not in page.text
    headers = json.loads(str(_config(page.text)["headers"]))
    assert headers["Authorization"] == "Bearer gwk_</script><script>alert(1)</script>"


async def test_with_graphiql_off_a_browser_gets_a_json_error_not_a_page(settings):
    async with _serve(settings.model_copy(update={"graphiql": False}), None) as http:
        response = await http.get("/graphql", headers=BROWSER)

    assert response.status_code == 400
    assert response.headers["content-type"].startswith("application/json")
    assert response.json()["errors"][0]["extensions"] == {
        "code": "BAD_USER_INPUT",
        "field": "query",
    }
