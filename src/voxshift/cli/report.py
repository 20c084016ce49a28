"""`voxshift report` (the seed's success metrics) and `voxshift readiness pre|during|post` (its
checklists). Both measure in services.rollout; this module parses, formats and picks the exit code.

A report is information: exit 0 whatever the verdicts (1 only when the stores cannot be read). A
readiness stage is a gate: exit 0 only when no check failed, so a deploy script can stop on it.
"""

from __future__ import annotations

import json
from typing import Annotated, Any

import typer

from voxshift.cli.common import State, run, table
from voxshift.cli.flags_format import usage

FORMATS = ("table", "json", "markdown")
SYMBOLS = {"pass": "✓", "fail": "✗", "skip": "-", "warn": "!"}
_STAGE_TITLES = {"pre": "pre-migration", "during": "during migration", "post": "post-migration"}


def _state(ctx: typer.Context) -> State:
    obj = ctx.find_root().obj
    return obj if isinstance(obj, State) else State()


def _whole(raw: str, option: str, low: int, high: int) -> int:
    # Parsed here, not by typer, so a bad value is our one `error:` line and exit 2.
    text = raw.strip()
    if not text.isdigit() or not low <= int(text) <= high:
        usage(f"{option} must be a whole number from {low} to {high}, got {raw!r}")
    return int(text)


def report_command(
    ctx: typer.Context,
    fmt: Annotated[str, typer.Option("--format", help="table, json or markdown.")] = "table",
    hours: Annotated[str, typer.Option("--hours", help="Window of the traffic and feedback figures.")] = "24",
) -> None:
    """The seed's Technical and Business Success Metrics from real data: target, value, sample size
    and pass / fail / not measurable (with why). Exit 0 whatever the verdicts."""
    from voxshift.services.rollout.report import MAX_REPORT_HOURS, success_report

    if fmt not in FORMATS:
        usage(f"--format must be one of {', '.join(FORMATS)}, got {fmt!r}")
    window = _whole(hours, "--hours", 1, MAX_REPORT_HOURS)
    settings = _state(ctx).settings()
    doc = run(success_report(settings, window))
    if fmt == "json":
        typer.echo(json.dumps(doc, indent=2, ensure_ascii=False))
    elif fmt == "markdown":
        typer.echo(format_markdown(doc))
    else:
        typer.echo(format_table(doc))


def _value(row: dict[str, Any]) -> str:
    value = row["value"]
    if value is None:
        return "-"
    unit = row["unit"]
    number = f"{value:.0f}" if unit == "events" else f"{value:.2f}"
    return f"{number} {unit}" if unit in ("events", "pp") else f"{number}{unit}"


def _rows(rows: list[dict[str, Any]]) -> list[list[str]]:
    return [
        [
            r["metric"],
            r["target"],
            _value(r),
            "-" if r["samples"] is None else str(r["samples"]),
            r["verdict"].replace("_", " "),
            r["why"],
        ]
        for r in rows
    ]


HEADERS = ["Metric", "Target", "Value", "Samples", "Verdict", "Why"]


def _summary(doc: dict[str, Any]) -> str:
    s = doc["summary"]
    return (
        f"{s['pass']} pass, {s['fail']} fail, {s['not_measurable']} not measurable "
        f"(last {doc['window_hours']} h, generated {doc['generated_at']})"
    )


def format_table(doc: dict[str, Any]) -> str:
    parts = ["Technical Success Metrics", table(HEADERS, _rows(doc["technical"]))]
    parts += ["", "Business Success Metrics", table(HEADERS, _rows(doc["business"]))]
    parts += ["", _summary(doc)]
    return "\n".join(parts)


def _md_table(rows: list[list[str]]) -> list[str]:
    def cell(text: str) -> str:
        return text.replace("|", "\\|")

    out = ["| " + " | ".join(HEADERS) + " |", "|" + "|".join("---" for _ in HEADERS) + "|"]
    out += ["| " + " | ".join(cell(c) for c in row) + " |" for row in rows]
    return out


def format_markdown(doc: dict[str, Any]) -> str:
    lines = ["## Migration Success Criteria", "", "### Technical Success Metrics", ""]
    lines += _md_table(_rows(doc["technical"]))
    lines += ["", "### Business Success Metrics", ""]
    lines += _md_table(_rows(doc["business"]))
    lines += ["", _summary(doc)]
    return "\n".join(lines)


def readiness_command(
    ctx: typer.Context,
    stage: Annotated[str, typer.Argument(help="pre, during or post.")],
    drill_days: Annotated[
        str, typer.Option("--drill-days", help="A rollback drill must be this recent (pre).")
    ] = "30",
    hours: Annotated[str, typer.Option("--hours", help="Window of the post-migration targets.")] = "24",
    as_json: Annotated[bool, typer.Option("--json", help="Machine-readable output.")] = False,
) -> None:
    """The seed's Migration Readiness Checklist for one stage, as checks with evidence. Exit 0 only
    when no check fails (warn and skip do not fail)."""
    from voxshift.services.rollout.readiness import STAGES, readiness
    from voxshift.services.rollout.report import MAX_REPORT_HOURS

    if stage not in STAGES:
        usage(f"stage must be one of {', '.join(STAGES)}, got {stage!r}")
    days = _whole(drill_days, "--drill-days", 1, 3650)
    window = _whole(hours, "--hours", 1, MAX_REPORT_HOURS)
    settings = _state(ctx).settings()
    result = run(readiness(settings, stage, drill_days=days, hours=window))
    doc = result.to_dict()
    if as_json:
        typer.echo(json.dumps(doc, indent=2, ensure_ascii=False))
    else:
        typer.echo(format_checks(doc))
    if not result.ok:
        raise typer.Exit(1)


def format_checks(doc: dict[str, Any]) -> str:
    lines = [f"{SYMBOLS[c['status']]} {c['name']}: {c['evidence']}" for c in doc["checks"]]
    failing = sum(1 for c in doc["checks"] if c["status"] == "fail")
    title = _STAGE_TITLES[doc["stage"]]
    verdict = "ready" if doc["ok"] else f"NOT ready ({failing} failing)"
    lines.append(f"{title}: {verdict}, {len(doc['checks'])} checks")
    return "\n".join(lines)
