"""inference/engines/registry.py: one engine table behind every menu and --engine choice."""
from gestura.cli import build_parser
from gestura.inference.engines.registry import COMMAND_LINE_ENGINES, ENGINE_NAMES, ENGINES, engine_enum_items


def _choices(command: str, option: str = "--engine") -> tuple:
    sub = next(a for a in build_parser()._actions if a.dest == "command").choices[command]
    return tuple(next(a for a in sub._actions if option in a.option_strings).choices)


def test_the_engine_table_feeds_the_command_line_and_blender_menus():
    # The position of each item is stored in saved .blend files and preferences: it must not move.
    assert ENGINE_NAMES == ("auto", "numpy", "torch", "external")
    assert COMMAND_LINE_ENGINES == ("auto", "numpy", "torch")  # external needs Blender's preferences
    assert _choices("generate") == COMMAND_LINE_ENGINES and _choices("eval") == COMMAND_LINE_ENGINES
    assert [item[0] for item in engine_enum_items()] == ["AUTO", "NUMPY", "TORCH", "EXTERNAL"]
    assert [item[1] for item in engine_enum_items()] == [choice.label for choice in ENGINES]
