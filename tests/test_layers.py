"""The package's layers, read statically from its source (no imports, so no bpy or torch needed).

- every exception class the user may be told about derives from ``gestura.errors.GesturaError``;
- the library (``inference/``, ``rigs/``, ``training/``) imports neither the command line nor Blender code;
- the package has no import cycles;
- the root holds only what Blender and Python need, the documented batch script and the error base.
"""
from __future__ import annotations

import ast
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
PACKAGE_DIRS_LEFT_OUT = {"tests", "bench", "build", "dist", "weights", "examples"}
BLENDER_MODULES = {"bpy", "bmesh", "mathutils", "bpy_extras", "addon_utils"}


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
    """Imports run one way: the Blender layer and the commands import the library, never the reverse."""
    modules = _module_names()
    offenders = []
    for path in package_files():
        if path.relative_to(REPO).parts[0] not in ("inference", "rigs", "training"):
            continue
        tree = ast.parse(path.read_text(), str(path))
        external = {alias.name.split(".")[0] for node in ast.walk(tree) if isinstance(node, ast.Import)
                    for alias in node.names}
        external |= {node.module.split(".")[0] for node in ast.walk(tree)
                     if isinstance(node, ast.ImportFrom) and not node.level and node.module}
        offenders += [f"{path.relative_to(REPO)}: {name}" for name in sorted(external & BLENDER_MODULES)]
        offenders += [f"{path.relative_to(REPO)}: {name}" for name in sorted(_imports(path, modules, module_level_only=False))
                      if name.split(".")[1] in ("cli", "commands", "blender")]
    assert offenders == []


def _module_names() -> set[str]:
    return {module_name(path) for path in package_files()}


def _imports(path: Path, modules: set[str], *, module_level_only: bool) -> set[str]:
    """The package modules ``path`` imports (``from pkg import name`` counts as pkg.name when that is a module)."""
    this = module_name(path)
    package = this if path.name == "__init__.py" else this.rpartition(".")[0]
    tree = ast.parse(path.read_text(), str(path))
    nodes = tree.body if module_level_only else list(ast.walk(tree))
    if module_level_only:  # module level includes try/if blocks, not function or class bodies
        stack, nodes = list(tree.body), []
        while stack:
            node = stack.pop()
            nodes.append(node)
            if isinstance(node, (ast.If, ast.Try)):
                stack.extend(ast.iter_child_nodes(node))
    found = set()
    for node in nodes:
        targets = []
        if isinstance(node, ast.Import):
            targets = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")
                base = base[:len(base) - (node.level - 1)]
                origin = ".".join(base + ([node.module] if node.module else []))
            else:
                origin = node.module or ""
            targets = [f"{origin}.{alias.name}" if f"{origin}.{alias.name}" in modules else origin
                       for alias in node.names]
        found.update(t for t in targets if t in modules and t != this)
    return found


def _cycles(module_level_only: bool) -> list[list[str]]:
    modules = _module_names()
    graph = {module_name(p): _imports(p, modules, module_level_only=module_level_only) for p in package_files()}
    cycles, state = [], {}

    def visit(node, trail):
        state[node] = "open"
        for nxt in sorted(graph[node]):
            if state.get(nxt) == "open":
                cycles.append(trail[trail.index(nxt):] + [nxt])
            elif nxt not in state:
                visit(nxt, trail + [nxt])
        state[node] = "done"

    for node in sorted(graph):
        if node not in state:
            visit(node, [node])
    return cycles


def test_the_package_has_no_import_cycles():
    """Module-level imports: a cycle here would make import order decide whether the package loads."""
    assert len(_module_names()) > 60
    assert _cycles(module_level_only=True) == []



def test_the_root_holds_at_most_five_python_files():
    assert sorted(p.name for p in REPO.glob("*.py")) == [
        "__init__.py", "__main__.py", "blender_batch.py", "cli.py", "errors.py"]


def test_every_bpy_import_is_in_the_blender_layer():
    """A path alone says which layer a file is in: bpy is imported under ``blender/`` only."""
    offenders = []
    for path in package_files():
        if path.relative_to(REPO).parts[0] == "blender":
            continue
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            names = [a.name for a in node.names] if isinstance(node, ast.Import) else (
                [node.module] if isinstance(node, ast.ImportFrom) and not node.level and node.module else [])
            offenders += [f"{path.relative_to(REPO)}: {n}" for n in names if n.split(".")[0] in BLENDER_MODULES]
    assert offenders == []
