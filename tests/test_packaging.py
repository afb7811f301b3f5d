"""pyproject.toml lists every package folder, so `pip install .` (not only an editable install) ships them all."""
import tomllib

from conftest import REPO


def test_every_package_folder_is_listed_in_pyproject():
    listed = set(tomllib.loads((REPO / "pyproject.toml").read_text())["tool"]["setuptools"]["packages"])
    skip = {"tests", "bench", "training/data"}
    found = {"gestura"}
    for init in REPO.rglob("__init__.py"):
        rel = init.parent.relative_to(REPO)
        if rel.parts and (rel.parts[0].startswith(".") or rel.parts[0] in skip):
            continue
        if str(rel) != ".":
            found.add("gestura." + ".".join(rel.parts))
    assert found == listed
