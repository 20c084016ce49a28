"""Shared CLI plumbing: lazily loaded settings and services, one-line errors, plain tables."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, NoReturn

import typer

from voxshift.config import Settings, load_settings
from voxshift.errors import VoxshiftError


@dataclass
class State:
    config_file: Path | None = None
    _settings: Settings | None = field(default=None, repr=False)

    def settings(self, **overrides: Any) -> Settings:
        if self._settings is None or overrides:
            try:
                self._settings = load_settings(self.config_file, **overrides)
            except VoxshiftError as exc:
                fail(exc)
        return self._settings

    def engines(self) -> Any:
        from voxshift.services.engines import build_engines

        try:
            return build_engines(self.settings())
        except VoxshiftError as exc:
            fail(exc)

    def voice_service(self) -> Any:
        from voxshift.services.voice import VoiceV2Service

        return VoiceV2Service(self.engines())


def fail(exc: VoxshiftError) -> NoReturn:
    typer.echo(f"error: {exc.message}", err=True)
    raise typer.Exit(exc.exit_code)


def table(headers: list[str], rows: list[list[str]]) -> str:
    widths = [max(len(str(c)) for c in col) for col in zip(headers, *rows, strict=False)]
    line = "  ".join(f"{{:<{w}}}" for w in widths)
    out = [line.format(*headers), line.format(*("-" * w for w in widths))]
    out += [line.format(*row) for row in rows]
    return "\n".join(s.rstrip() for s in out)
