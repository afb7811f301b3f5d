"""What the extension registers, read from its source with ast (no bpy needed), so the install test
checks every operator and panel the code declares rather than a hand-kept list."""
import ast
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def _class_attrs(folder: str, base_suffix: str, attr: str) -> list[str]:
    found = []
    for path in sorted((REPO / folder).glob("*.py")):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ClassDef) and any(
                ast.unparse(base).endswith(base_suffix) for base in node.bases
            ):
                for item in node.body:
                    if isinstance(item, ast.Assign) and any(getattr(t, "id", None) == attr for t in item.targets):
                        found.append(ast.literal_eval(item.value))
    return sorted(found)


def operator_ids() -> list[str]:
    return _class_attrs("blender/operators", "Operator", "bl_idname")


def panel_ids() -> list[str]:
    return _class_attrs("blender/panels", "Panel", "bl_idname")
