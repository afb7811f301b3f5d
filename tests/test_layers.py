"""The package's layers, read statically from its source (no imports, so no bpy or torch needed).

- every exception class the user may be told about derives from ``gestura.errors.GesturaError``;
- the library (``inference/``, ``rigs/``, ``training/``) imports neither the command line nor Blender code;
"""
from __future__ import annotations

import ast
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
PACKAGE_DIRS_LEFT_OUT = {"tests", "bench", "build", "dist", "weights", "examples"}


def package_files() -> list[Path]:
    """Every module of the package ``gestura`` (the repository root), scripts and tests left out."""
    files = []
    for path in sorted(REPO.rglob("*.py")):
        parts = path.relative_to(REPO).parts
        if parts[0].startswith(".") or parts[0] in PACKAGE_DIRS_LEFT_OUT:
            continue
        if path.name == "blender_batch.py" and len(parts) == 1:  # a script Blender runs, not a module
            continue
        files.append(path)
    return files


def module_name(path: Path) -> str:
    parts = list(path.relative_to(REPO).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(["gestura", *parts])


def test_every_error_class_derives_from_the_one_base():
    bases: dict[str, list[str]] = {}
    where: dict[str, str] = {}
    for path in package_files():
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            if isinstance(node, ast.ClassDef) and node.name.endswith("Error"):
                bases[node.name] = [b.id if isinstance(b, ast.Name) else ast.unparse(b) for b in node.bases]
                where[node.name] = module_name(path)

    def derives(name: str, seen=()) -> bool:
        if name == "GesturaError":
            return True
        return any(b in bases and b not in seen and derives(b, (*seen, name)) for b in bases.get(name, ()))

    assert "GesturaError" in bases and len(bases) > 15  # the walk found the package's errors
    assert [f"{where[n]}.{n}" for n in sorted(bases) if not derives(n)] == []


def test_the_library_imports_neither_the_command_line_nor_blender():
    offenders = []
    for path in package_files():
        layer = path.relative_to(REPO).parts[0]
        if layer not in ("inference", "rigs", "training") or path.relative_to(REPO).parts[:2] == ("rigs", "blender"):
            continue
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            names = []
            if isinstance(node, ast.Import):
                names = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom):
                names = [("." * node.level) + (node.module or "")]
            for name in names:
                if name.split(".")[0] in ("bpy", "bmesh", "mathutils", "bpy_extras") or name.lstrip(".") in ("cli", "commands") \
                        or name.lstrip(".").startswith(("cli.", "commands.")):
                    offenders.append(f"{path.relative_to(REPO)}: {name}")
    assert offenders == []
