"""The layering of ARCHITECTURE.md, enforced: every import in src/voxshift points inward.

Reads every module with ``ast`` (imports inside functions and under TYPE_CHECKING count too) and
checks each ``voxshift.*`` import against what its top-level package may import.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

SRC = Path(__file__).resolve().parents[2] / "src" / "voxshift"

# What each top-level part may import from voxshift (prefixes of dotted module names). Anything
# not listed is forbidden. Keep in step with ARCHITECTURE.md.
# The CLI and the HTTP API reach the application through services/, never stores/ or legacy/.
ENTRY_POINTS_MAY_USE = (
    "services",
    "engines.base",
    "schemas",
    "audio",
    "core",
    "errors",
    "config",
    "config_report",
)
ALLOWED: dict[str, tuple[str, ...]] = {
    "errors": (),
    "core": ("core", "errors"),
    "config": ("core", "errors"),
    "config_report": ("config", "core", "errors"),
    "schemas": ("schemas", "core", "errors"),
    "audio": ("audio", "core", "errors", "engines.base"),
    "engines": ("engines", "audio", "core", "errors", "config"),
    "stores": ("stores", "schemas", "audio", "core", "errors", "config"),
    "legacy": ("legacy", "engines", "stores", "schemas", "audio", "core", "errors", "config"),
    "services": (
        "services",
        "legacy",
        "engines",
        "stores",
        "schemas",
        "audio",
        "core",
        "errors",
        "config",
        "config_report",
    ),
    "api": ("api", *ENTRY_POINTS_MAY_USE),
    "cli": ("cli", "api", *ENTRY_POINTS_MAY_USE),
    "langgraph": ("langgraph", *ENTRY_POINTS_MAY_USE),
}


def part_of(path: Path) -> str:
    relative = path.relative_to(SRC)
    return relative.parts[0].removesuffix(".py")


def voxshift_imports(path: Path) -> list[tuple[int, str]]:
    package = ".".join(("voxshift", *path.relative_to(SRC).with_suffix("").parts[:-1]))
    return imports_in(path.read_text(encoding="utf-8"), package)


def imports_in(source: str, package: str) -> list[tuple[int, str]]:
    """``(line, module)`` of every voxshift import in ``source``, relative ones resolved against
    ``package``, without the ``voxshift.`` prefix."""
    tree = ast.parse(source)
    found: list[tuple[int, str]] = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found += [(node.lineno, alias.name) for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.rsplit(".", node.level - 1)[0] if node.level > 1 else package
                module = f"{base}.{node.module}" if node.module else base
            else:
                module = node.module or ""
            found.append((node.lineno, module))
    return [(line, name.removeprefix("voxshift.")) for line, name in found if name.startswith("voxshift.")]


MODULES = sorted(p for p in SRC.rglob("*.py") if part_of(p) != "__init__")


def test_every_top_level_part_has_a_rule() -> None:
    parts = {part_of(p) for p in MODULES}
    assert parts <= set(ALLOWED) | {"__main__"}, parts - set(ALLOWED)


@pytest.mark.parametrize("path", MODULES, ids=lambda p: str(p.relative_to(SRC)))
def test_imports_point_inward(path: Path) -> None:
    part = part_of(path)
    allowed = ALLOWED.get(part, ())
    bad = [
        f"line {line}: voxshift.{name}"
        for line, name in voxshift_imports(path)
        if not any(name == prefix or name.startswith(prefix + ".") for prefix in allowed)
    ]
    assert not bad, f"{part}/ may import only {allowed}; {path.relative_to(SRC)} imports {bad}"


def test_core_imports_only_the_standard_library() -> None:
    import sys

    offenders = []
    for path in (SRC / "core").rglob("*.py"):
        tree = ast.parse(path.read_text(encoding="utf-8"))
        for node in ast.walk(tree):
            names = (
                [a.name for a in node.names]
                if isinstance(node, ast.Import)
                else [node.module or ""]
                if isinstance(node, ast.ImportFrom) and not node.level
                else []
            )
            for name in names:
                top = name.split(".")[0]
                if top not in sys.stdlib_module_names and top not in ("voxshift", "__future__"):
                    offenders.append(f"{path.name}: {name}")
    assert not offenders, offenders


def test_the_parser_resolves_relative_and_lazy_imports() -> None:
    source = (
        "from ..stores.objects import local\n"
        "from . import deps\n"
        "def f():\n"
        "    import voxshift.legacy.reference\n"
        "    from voxshift.services.wiring import runtime\n"
        "import httpx\n"
    )
    assert [name for _, name in imports_in(source, "voxshift.api")] == [
        "stores.objects",
        "api",
        "legacy.reference",
        "services.wiring",
    ]
