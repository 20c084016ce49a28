"""The seed's PerformanceRegressionDetector, run on the stored migration metrics, with its rollback.

``check`` compares voice_v2 with legacy per operation over a window (the pure detector decides:
1.2x latency / 1.5x errors, with enough samples and a significance test behind each). With
``rollback`` a regression is acted on through the audited flag service: the operation's percentage
goes to 0 (``action="percentage_0"``) or the global kill switch is thrown (``action="kill"``).

:class:`RegressionService` is what `voxshift regression` and GET /v2/migration/regression both call.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal, Protocol

from voxshift.core.regression import RegressionDetector, Verdict
from voxshift.core.stats import WindowStats
from voxshift.core.vocabulary import OPERATIONS, Operation

RollbackAction = Literal["percentage_0", "kill"]


class WindowSource(Protocol):
    async def window(
        self, operation: str, system: str, hours: int = 1, now: float | None = None
    ) -> WindowStats: ...


class RollbackTarget(Protocol):
    async def kill(self, *, actor: str, reason: str) -> Any: ...

    async def set_percentage(
        self, operation: Operation | None, percentage: int, *, actor: str, reason: str
    ) -> Any: ...


@dataclass
class RegressionReport:
    hours: int
    verdicts: dict[str, Verdict]
    rolled_back: list[Operation] = field(default_factory=list)
    action: RollbackAction | None = None
    would_roll_back: list[Operation] = field(default_factory=list)  # a dry run's regressed operations

    @property
    def regression(self) -> bool:
        return any(v.regression for v in self.verdicts.values())

    def to_dict(self) -> dict[str, Any]:
        return {
            "hours": self.hours,
            "regression": self.regression,
            "verdicts": {op: v.to_dict() for op, v in self.verdicts.items()},
            "rolled_back": self.rolled_back,
            "action": self.action,
            **({"would_roll_back": self.would_roll_back} if self.would_roll_back else {}),
        }


async def check(
    metrics: WindowSource,
    detector: RegressionDetector,
    *,
    hours: int = 2,
    operations: tuple[Operation, ...] = OPERATIONS,
    flags: RollbackTarget | None = None,
    action: RollbackAction = "percentage_0",
    actor: str = "regression-detector",
    now: float | None = None,
) -> RegressionReport:
    """Evaluate each operation; with ``flags`` given, roll back the ones that regressed."""
    verdicts: dict[str, Verdict] = {}
    for op in operations:
        v2 = await metrics.window(op, "voice_v2", hours, now)
        legacy = await metrics.window(op, "legacy", hours, now)
        verdicts[op] = detector.evaluate(v2, legacy)
    report = RegressionReport(hours, verdicts)
    regressed = [op for op in operations if verdicts[op].regression]
    if flags is None or not regressed:
        return report
    reason = "; ".join(f"{op}: {', '.join(verdicts[op].reasons)}" for op in regressed)
    if action == "kill":
        await flags.kill(actor=actor, reason=f"performance regression: {reason}")
    else:
        for op in regressed:
            await flags.set_percentage(op, 0, actor=actor, reason=f"performance regression: {reason}")
    report.rolled_back = regressed
    report.action = action
    return report


class MetricsWithDetector(WindowSource, Protocol):
    @property
    def detector(self) -> RegressionDetector: ...


class RegressionService:
    """The regression check over stored metrics; with ``flags`` it can also roll back."""

    def __init__(self, metrics: MetricsWithDetector, flags: RollbackTarget | None = None) -> None:
        self.metrics = metrics
        self.flags = flags

    async def check(
        self,
        *,
        hours: int = 2,
        rollback: bool = False,
        dry_run: bool = False,
        action: RollbackAction = "percentage_0",
        actor: str = "regression-detector",
    ) -> RegressionReport:
        """Without ``rollback`` (or with ``dry_run``) nothing is changed; a dry run lists in
        ``would_roll_back`` what a rollback would act on."""
        acting = rollback and not dry_run
        if acting and self.flags is None:
            raise RuntimeError("a rollback needs the flag service: open it with rollback=True")
        flags = self.flags if acting else None
        report = await check(
            self.metrics, self.metrics.detector, hours=hours, flags=flags, action=action, actor=actor
        )
        if rollback and dry_run:
            report.would_roll_back = [op for op in OPERATIONS if report.verdicts[op].regression]
        return report
