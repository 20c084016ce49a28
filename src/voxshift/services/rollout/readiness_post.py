"""The post-migration checklist (seed "Post-Migration Checklist"): every user on voice_v2, its
targets met over the last hours, legacy idle but for fallbacks. Split from ``readiness`` to keep
each module short; same :class:`~voxshift.services.rollout.readiness.Context`."""

from __future__ import annotations

from functools import partial

from voxshift.core.rollout import success
from voxshift.core.rollout.success import CheckStatus
from voxshift.core.rollout.window import SYSTEM_V2
from voxshift.core.vocabulary import FEATURES, OPERATIONS
from voxshift.services.rollout.readiness import Context, Probe, sunset_skip


def post_checks(ctx: Context) -> list[tuple[str, Probe]]:
    return [
        ("rollout completed", partial(completed, ctx)),
        ("flags at 100% with the kill switch on", partial(flags_full, ctx)),
        ("every seed feature on", partial(features_on, ctx)),
        ("user satisfaction target met", partial(satisfaction, ctx)),
        ("production error and latency targets met", partial(production_targets, ctx)),
        ("legacy serves fallbacks only (1 h)", partial(legacy_idle, ctx)),
        ("data migrated, legacy sunset", sunset_skip("data migration and the legacy sunset")),
    ]


async def completed(ctx: Context) -> tuple[CheckStatus, str]:
    state = await (await ctx.view()).rollout_state()
    return ("pass" if state.state == "completed" else "fail"), f"rollout {state.state} (seq {state.seq})"


async def flags_full(ctx: Context) -> tuple[CheckStatus, str]:
    c = (await ctx.view()).flags.config
    ok = c.enabled and all(c.percentages[op] == 100 for op in OPERATIONS)
    pct = f"STT {c.percentages['stt']}% / TTS {c.percentages['tts']}%"
    return ("pass" if ok else "fail"), f"version {c.version}: {'enabled' if c.enabled else 'killed'}, {pct}"


async def features_on(ctx: Context) -> tuple[CheckStatus, str]:
    c = (await ctx.view()).flags.config
    off = [f for f in FEATURES if not c.feature(f)]
    return ("fail", "off: " + ", ".join(off)) if off else ("pass", "on: " + ", ".join(FEATURES))


async def satisfaction(ctx: Context) -> tuple[CheckStatus, str]:
    view = await ctx.view()
    ratings = (await view.feedback.window(ctx.now - ctx.hours * 3600, ctx.now)).of(system=SYSTEM_V2)
    row = success.user_satisfaction(ratings)
    return (
        "pass" if row.verdict == "pass" else "fail"
    ), f"{row.why} (last {ctx.hours} h, target {row.target})"


async def production_targets(ctx: Context) -> tuple[CheckStatus, str]:
    plan = await ctx.plan()
    phase = plan.phases[-1]
    view = await ctx.view()
    window = await view.metrics.traffic(ctx.now - ctx.hours * 3600, ctx.now)
    seen: list[str] = []
    failed = False
    for criterion in phase.criteria:
        if criterion.metric not in ("error_rate", "latency_p95_ms"):
            continue
        for op in criterion.operations or OPERATIONS:
            v2 = window[op].v2
            n = v2.requests if criterion.metric == "error_rate" else v2.latency.total
            value = v2.error_rate if criterion.metric == "error_rate" else v2.latency.percentile(0.95)
            if n < criterion.min_samples or value is None:
                seen.append(f"{criterion.metric}[{op}] {n}/{criterion.min_samples} samples")
                failed = True
                continue
            ok = value <= criterion.threshold
            failed |= not ok
            seen.append(
                f"{criterion.metric}[{op}] {value:.4g} <= {criterion.threshold:g}: {'ok' if ok else 'no'}"
            )
    if not seen:
        return "fail", f"phase {phase.name} has no error_rate or latency_p95_ms criterion"
    return ("fail" if failed else "pass"), f"phase {phase.name}, last {ctx.hours} h: " + "; ".join(seen)


async def legacy_idle(ctx: Context) -> tuple[CheckStatus, str]:
    view = await ctx.view()
    window = await view.metrics.traffic(ctx.now - 3600, ctx.now)
    legacy = sum(window[op].legacy.requests for op in OPERATIONS)
    fallbacks = sum(window[op].fallbacks for op in OPERATIONS)
    ok = legacy <= fallbacks
    return (
        "pass" if ok else "fail"
    ), f"legacy handled {legacy} requests in the last hour, {fallbacks} of them fallbacks"
