"""The result table (markdown, printed and optionally appended to bench/RESULTS.md)."""

from __future__ import annotations

import os
import platform
import subprocess
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

__all__ = ["Row", "machine_header", "render"]


@dataclass(frozen=True, slots=True)
class Row:
    """One peer's figures for one query; `note` explains a skipped or suspicious row."""

    query: str
    peer: str
    requests: int = 0
    seconds: float = 0.0
    p50_ms: float = 0.0
    p99_ms: float = 0.0
    statements: float | None = None
    server_cpu_ms: float | None = None
    pg_cpu_ms: float | None = None
    same_data: bool | None = None
    note: str = ""
    # Our X-Gateway-Read-Path answer for this query (None: not our gateway).
    read_path: str | None = None

    @property
    def rps(self) -> float:
        """Requests per second."""
        return self.requests / self.seconds if self.seconds else 0.0


def _cpu_model() -> str:
    for line in Path("/proc/cpuinfo").read_text().splitlines():
        if line.startswith("model name"):
            return line.split(":", 1)[1].strip()
    return platform.processor() or "unknown"


def machine_header(pg_version: str, root: Path, settings: str) -> str:
    """Date, machine, PostgreSQL, commit and run settings as markdown lines."""
    commit = subprocess.run(
        ["git", "-C", str(root), "describe", "--always", "--dirty", "--abbrev=12"],
        capture_output=True,
        text=True,
        check=False,
    ).stdout.strip()
    branch = subprocess.run(
        ["git", "-C", str(root), "rev-parse", "--abbrev-ref", "HEAD"],
        capture_output=True,
        text=True,
        check=False,
    ).stdout.strip()
    now = datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC")
    return (
        f"- date: {now}\n"
        f"- machine: {os.cpu_count()} CPUs ({_cpu_model()}), {platform.system()}"
        f" {platform.release()}\n"
        f"- PostgreSQL: {pg_version}\n"
        f"- commit: {commit or 'n/a'} (branch {branch or 'n/a'})\n"
        f"- settings: {settings}\n"
    )


def _num(value: float | None, digits: int = 1) -> str:
    return "n/a" if value is None else f"{value:,.{digits}f}"


def _ratio(row: Row, base: Row | None) -> str:
    if base is None or not base.rps or not row.rps:
        return "–"
    return f"{row.rps / base.rps:.2f}×"


def _percent(row: Row, base: Row | None) -> str:
    if base is None or not base.rps or not row.rps:
        return "–"
    return f"{100 * row.rps / base.rps:.0f} %"


_HEADER = (
    "| peer | path | req/s | p50 ms | p99 ms | SQL/req | server CPU ms/req | PG CPU ms/req"
    " | vs PostGraphile | % of floor | % of HTTP floor | vs resolver | same data |\n"
    "|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|"
)


def render(rows: list[Row], titles: dict[str, str]) -> str:
    """One markdown table per query; ratios are req/s against the peers of the same run.

    `path` is the read path our gateway answered with (X-Gateway-Read-Path): a row of
    ours-compiled served by the resolver says so. `vs resolver` compares with ours-resolver
    (Q6's target).
    """
    out: list[str] = []
    for query, title in titles.items():
        mine = [r for r in rows if r.query == query]
        if not mine:
            continue
        base = {
            peer: next((r for r in mine if r.peer == peer and r.requests), None)
            for peer in ("postgraphile", "floor", "http-floor", "ours-resolver")
        }
        out.append(f"**{query}** {title}\n")
        out.append(_HEADER)
        for r in mine:
            path = r.read_path or "–"
            if not r.requests:
                out.append(
                    f"| {r.peer} | {path} | – | – | – | – | – | – | – | – | – | – |"
                    f" {r.note or 'skipped'} |"
                )
                continue
            same = {True: "yes", False: "NO", None: "n/a"}[r.same_data]
            out.append(
                f"| {r.peer} | {path} | {r.rps:,.0f} | {r.p50_ms:.2f} | {r.p99_ms:.2f}"
                f" | {_num(r.statements, 2)} | {_num(r.server_cpu_ms, 2)}"
                f" | {_num(r.pg_cpu_ms, 2)} | {_ratio(r, base['postgraphile'])}"
                f" | {_percent(r, base['floor'])} | {_percent(r, base['http-floor'])}"
                f" | {_ratio(r, base['ours-resolver'])}"
                f" | {same}{' — ' + r.note if r.note else ''} |"
            )
        out.append("")
    return "\n".join(out)
