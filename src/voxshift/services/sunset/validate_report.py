"""The validation's report: per category counts and every missing, changed or extra item named."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from voxshift.core.legacy_layout import family_of
from voxshift.core.sunset import outcomes as oc

Progress = Callable[[str, int, int], None]  # (category, items, bytes) checked since the last call
CATEGORIES = ("settings", "objects", "cache_keys", "metrics")
LIST_LIMIT = 1000  # skipped items listed per category; `voxshift sunset report` lists them all
SUMMARY_NAMES = 20  # problem names kept in the recorded validation (the settings document stays small)
KEY_PAGE = 200
OBJECT_PAGE = 8  # bodies read concurrently: bounds memory to a few objects
SETTINGS_PAGE = 50
ACTOR = "sunset-validation"


def noop(category: str, items: int, size: int) -> None:
    return None


def key_category(legacy_key: str) -> str:
    return "metrics" if family_of(legacy_key) in oc.HISTORY_FAMILIES else "cache_keys"


@dataclass
class Category:
    legacy: int = 0
    v2: int = 0
    migrated: int = 0
    missing: list[dict[str, Any]] = field(default_factory=list)
    changed: list[dict[str, Any]] = field(default_factory=list)
    extra: list[dict[str, Any]] = field(default_factory=list)
    skipped: list[dict[str, Any]] = field(default_factory=list)
    not_problems: dict[str, int] = field(default_factory=dict)

    def note(self, what: str, n: int = 1) -> None:
        self.not_problems[what] = self.not_problems.get(what, 0) + n

    def skip(self, key: str, reason: str | None) -> None:
        self.note("skipped")
        if len(self.skipped) < LIST_LIMIT:
            self.skipped.append({"key": key, "reason": reason})

    def to_json(self) -> dict[str, Any]:
        listed = self.not_problems.get("skipped", 0)
        return {
            "legacy": self.legacy,
            "v2": self.v2,
            "migrated": self.migrated,
            "missing": self.missing,
            "changed": self.changed,
            "extra": self.extra,
            "skipped": self.skipped,
            "skipped_truncated": listed > len(self.skipped),
            "not_problems": self.not_problems,
        }


@dataclass
class ValidationReport:
    categories: dict[str, Category] = field(default_factory=lambda: {c: Category() for c in CATEGORIES})
    checked_at: str = ""

    @property
    def clean(self) -> bool:
        return not any(c.missing or c.changed or c.extra for c in self.categories.values())

    def to_json(self) -> dict[str, Any]:
        return {
            "clean": self.clean,
            "categories": {name: c.to_json() for name, c in self.categories.items()},
            "checked_at": self.checked_at,
        }

    def summary(self) -> dict[str, Any]:
        """What the sunset state keeps: counts, and the first few problems by name."""
        out: dict[str, Any] = {}
        for name, c in self.categories.items():
            out[name] = {"legacy": c.legacy, "v2": c.v2, "migrated": c.migrated}
            for kind in ("missing", "changed", "extra"):
                items = getattr(c, kind)
                out[name][kind] = len(items)
                if items:
                    out[name][f"{kind}_keys"] = [i["key"] for i in items[:SUMMARY_NAMES]]
        return {"checked_at": self.checked_at, "categories": out}


def problem(key: str, reason: str, v2_key: str | None = None) -> dict[str, Any]:
    return {"key": key, "v2_key": v2_key, "reason": reason}


NO_OUTCOME = "legacy item with no journal outcome (new since the migration, or never migrated)"
