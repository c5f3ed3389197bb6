"""GraphiQL on a browser's GET of /graphql, before authentication: the page itself is public.

The page (gateway/static/graphiql.html) loads only bundled assets, so it works offline. With a
demo token (`gateway serve --demo` on a loopback host) its Headers tab and every request carry
`Authorization: Bearer <demo key>`, so the first page a newcomer sees works; without one, the page
says where a token goes instead of opening on "missing bearer token".
"""

from __future__ import annotations

import html
from pathlib import Path

import orjson
from starlette.datastructures import QueryParams
from starlette.types import ASGIApp, Receive, Scope, Send

from gateway.pipeline import header, is_graphql_http

__all__ = ["ASSETS_DIR", "GraphiQLPage", "render_page"]

STATIC_DIR = Path(__file__).parent / "static"
ASSETS_DIR = STATIC_DIR / "graphiql"
_PLACEHOLDER_HEADERS = '{\n  "Authorization": "Bearer <token>"\n}'
_HINT = (
    '<p id="token-hint">Every request needs a token: open the <b>Headers</b> tab (bottom left)'
    f" and send <code>{html.escape(_PLACEHOLDER_HEADERS)}</code>. Create one with"
    " <code>gateway keys create --tenant &lt;tenant&gt; --role VIEWER</code>"
    " (<code>make run</code> prints a demo key).</p>"
)


def render_page(demo_token: str | None) -> str:
    """The IDE page, with the demo key filled in, or with the hint where to put a token."""
    template = (STATIC_DIR / "graphiql.html").read_text(encoding="utf-8")
    headers = (
        orjson.dumps({"Authorization": f"Bearer {demo_token}"}, option=orjson.OPT_INDENT_2)
        if demo_token
        else None
    )
    config = {
        "headers": headers.decode() if headers else None,
        "placeholder": _PLACEHOLDER_HEADERS,
    }
    # `<` escaped so that no value can close the <script> element it sits in.
    script_json = orjson.dumps(config).decode().replace("<", "\\u003c")
    return template.replace("/*GATEWAY_CONFIG*/", script_json).replace(
        "<!--TOKEN_HINT-->", "" if demo_token else _HINT
    )


class GraphiQLPage:
    """Answers a browser's GET /graphql without `query` with the IDE; everything else passes."""

    def __init__(self, app: ASGIApp, *, enabled: bool, demo_token: str | None = None) -> None:
        self.app = app
        self.page = render_page(demo_token).encode() if enabled else None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if self.page is not None and self._wants_page(scope):
            await send(
                {
                    "type": "http.response.start",
                    "status": 200,
                    "headers": [
                        (b"content-type", b"text/html; charset=utf-8"),
                        (b"content-length", str(len(self.page)).encode()),
                        # it may hold the demo key: never kept by a cache
                        (b"cache-control", b"no-store"),
                    ],
                }
            )
            await send({"type": "http.response.body", "body": self.page})
            return
        await self.app(scope, receive, send)

    @staticmethod
    def _wants_page(scope: Scope) -> bool:
        return (
            is_graphql_http(scope)
            and scope["method"] == "GET"
            and "text/html" in (header(scope, b"accept") or "")
            and "query" not in QueryParams(scope["query_string"])
        )
