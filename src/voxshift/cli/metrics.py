"""`voxshift metrics`: the migration dashboard (seed M3.2) from the configured state store.

Reads the hour keys every voxshift process flushes into (``migration:voice_v2:*`` in the raw store:
Redis when VOXSHIFT_STATE_URL names one, else the embedded SQLite file), so it shows the whole
fleet's traffic, not this process's. The rollout shown is the stored flag configuration's, falling
back to VOICE_V2_ROLLOUT_PERCENTAGE when none is stored yet: first the seed's single figure (STT's
percentage, 0 while the kill switch is thrown), then what each operation really gets (also 0 while
its feature is off).
"""

from __future__ import annotations

import json
from typing import Annotated, Any, NoReturn

import typer

from voxshift.cli.common import State, run, table
from voxshift.errors import EXIT_USAGE

MAX_HOURS = 168  # the keys' 7-day retention: a longer window would only show empty hours


def _usage(message: str) -> NoReturn:
    typer.echo(f"error: {message}", err=True)
    raise typer.Exit(EXIT_USAGE)


def parse_hours(raw: str) -> int:
    """--hours as a whole number within 1..168. Parsed here rather than by typer so that a bad
    value is one ``error:`` line like every other bad input, not typer's usage box."""
    text = raw.strip()
    if not text.lstrip("-").isdigit() or not 1 <= int(text) <= MAX_HOURS:
        _usage(f"--hours must be a whole number from 1 to {MAX_HOURS} (the 7-day retention), got {raw!r}")
    return int(text)


def metrics_command(
    ctx: typer.Context,
    hours: Annotated[
        str,
        typer.Option(
            "--hours", help=f"Window: the last N hour buckets, current one included (1-{MAX_HOURS})."
        ),
    ] = "24",
    as_json: Annotated[bool, typer.Option("--json", help="Print the dashboard data as JSON.")] = False,
) -> None:
    """Migration dashboard: traffic, error rates, p50/p95/p99 per system, fallbacks, shadow
    agreement and the regression verdict, from every process's flushed metrics."""
    window = parse_hours(hours)
    state: State = ctx.obj
    settings = state.settings()

    async def go() -> dict[str, Any]:
        from voxshift.services.wiring.control import open_dashboard

        async with open_dashboard(settings) as dashboard:
            return await dashboard.data(hours=window)

    dashboard = run(go())
    if as_json:
        typer.echo(json.dumps(dashboard, indent=2, sort_keys=True))
        return
    typer.echo(render(dashboard))


# --- the table ------------------------------------------------------------------------------------


def _pct(value: float | None) -> str:
    return "-" if value is None else f"{value:.2%}"


def _ms(value: float | None) -> str:
    return "-" if value is None else f"{value:.0f}"


def _ratio(value: float | None) -> str:
    return "-" if value is None else f"{value:.2f}x"


def _percent(value: float | None) -> str:
    return "-" if value is None else f"{value:g}%"


def render(dash: dict[str, Any]) -> str:
    per_op = dash.get("rollout_percentages") or {}
    each = ", ".join(f"{op} {_percent(value)}" for op, value in per_op.items())
    lines = [
        f"migration metrics: last {dash['window_hours']} hour bucket(s) "
        f"({dash['hours']['first']}..{dash['hours']['last']}, unix hours); "
        f"rollout {_percent(dash['current_rollout_percentage'])}" + (f" ({each})" if each else ""),
        "",
    ]
    rows: list[list[str]] = []
    for op, systems in dash["latency_metrics"].items():
        for system, lat in systems.items():
            requests = dash["system_comparison"][op]["requests"][system]
            kinds = dash["error_types"][op][system]
            top = ", ".join(f"{k} {n}" for k, n in sorted(kinds.items(), key=lambda kv: -kv[1])[:3])
            rows.append(
                [
                    op,
                    system,
                    str(requests),
                    _pct(dash["error_rates"][op][system]),
                    _ms(lat["p50_ms"]),
                    _ms(lat["p95_ms"]),
                    _ms(lat["p99_ms"]),
                    _ms(lat["mean_ms"]),
                    top or "-",
                ]
            )
    headers = [
        "operation",
        "system",
        "requests",
        "errors",
        "p50 ms",
        "p95 ms",
        "p99 ms",
        "mean ms",
        "top errors",
    ]
    lines.append(table(headers, rows))
    lines.append("")
    rows = []
    notes: list[str] = []
    for op, comparison in dash["system_comparison"].items():
        fallback = dash["fallback_rates"][op]
        shadow = dash["shadow"][op]
        cache = dash["cache_hit_rates"][op]
        verdict = comparison["regression"]
        rows.append(
            [
                op,
                _pct(comparison["voice_v2_share"]),
                _ratio(comparison["p95_ratio"]),
                _ratio(comparison["error_rate_ratio"]),
                f"{fallback['fallbacks']} ({_pct(fallback['rate'])})",
                str(dash["total_failures"][op]),
                f"{_pct(shadow['agreement_rate'])} of {shadow['compared_transcripts']}"
                if shadow["compared_transcripts"]
                else "-",
                f"{_pct(cache['rate'])} of {cache['lookups']}" if cache["lookups"] else "-",
                verdict["status"],
            ]
        )
        if verdict["status"] == "regression" or sum(comparison["requests"].values()):
            notes += [f"{op}: {reason}" for reason in verdict["reasons"]]  # no traffic: nothing to say
    headers = ["operation", "v2 share", "p95 v2/legacy", "errors v2/legacy", "fallbacks", "total failures"]
    lines.append(table([*headers, "shadow agreement", "cache hits", "verdict"], rows))
    if notes:
        lines += ["", *notes]
    return "\n".join(lines)
