"""Setting up the host: the server process before its first worker thread, and the local models on
disk (`voxshift models install`). The CLI calls these rather than the engines directly."""

from __future__ import annotations

from voxshift.config import Settings
from voxshift.engines import models
from voxshift.engines.memory import limit_malloc_arenas
from voxshift.services.wiring.logging import configure_logging


def prepare_server_process(settings: Settings) -> None:
    """Cap glibc's malloc arenas, then configure logging. The cap only holds for threads started
    after it, so this comes before anything starts a worker thread."""
    limit_malloc_arenas(settings.malloc_arenas)
    configure_logging(settings.log_level)


def install_models(settings: Settings) -> list[str]:
    """Install or verify every local model; one line of report each."""
    return models.install_models(settings)
