"""The package side of the foundation: importable without Blender, a working console command."""
import subprocess
import sys
from pathlib import Path

from conftest import REPO


def run_python(code: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd="/")


def test_inference_import_never_imports_bpy_or_torch():
    done = run_python(
        "import sys, gestura, gestura.inference, gestura.rigs.skeleton, gestura.rigs.motion, gestura.cli\n"
        "gestura.cli.build_parser()\n"
        "print(sorted(m for m in ('bpy', 'torch') if m in sys.modules))"
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "[]"


def test_package_is_installed_from_the_repository_root():
    done = run_python("import gestura, pathlib; print(pathlib.Path(gestura.__file__).parent)")
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == str(REPO)


def test_console_command_reports_version_and_engines():
    gestura = Path(sys.executable).parent / "gestura"
    done = subprocess.run([str(gestura), "info"], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    assert "gestura 0.1.0" in done.stdout
    assert "numpy" in done.stdout
    assert "model:" in done.stdout
    # Which engine generation takes when none is named: torch where it is installed, on CUDA if any.
    import importlib.util
    if importlib.util.find_spec("torch") is not None:
        import torch

        device = "cuda" if torch.cuda.is_available() else "cpu"
        assert f"  engine 'auto' (gestura generate's default) runs torch on {device}\n" in done.stdout
    else:
        assert "  engine 'auto' (gestura generate's default) runs numpy on cpu\n" in done.stdout


def test_info_on_a_missing_checkpoint_is_one_line_error(tmp_path):
    done = subprocess.run([sys.executable, "-m", "gestura", "info", "--checkpoint", str(tmp_path / "no.safetensors")],
                          capture_output=True, text=True)
    assert done.returncode == 2
    assert done.stderr.startswith("gestura info: error: checkpoint") and "does not exist" in done.stderr
    assert "Traceback" not in done.stderr


def test_unknown_command_exits_with_usage_error():
    done = subprocess.run([sys.executable, "-m", "gestura", "no-such-command"], capture_output=True, text=True)
    assert done.returncode == 2
    assert "invalid choice" in done.stderr


def test_info_says_which_decoders_look_ahead(tmp_path, capsys):
    from gestura import cli
    from random_checkpoint import tiny_config, write_random_checkpoint

    path = write_random_checkpoint(tmp_path / "ahead.safetensors",
                                   tiny_config(decoder_lookahead={"face": 0, "upper": 2, "hands": 3, "lower": 0}))
    assert cli.main(["info", "--checkpoint", str(path)]) == 0
    assert "decoders that look ahead (upper 2, hands 3 frames)" in capsys.readouterr().out


def test_info_counts_the_stroke_planner_and_names_the_default_style(capsys):
    from gestura import cli
    from gestura.inference.checkpoint import default_checkpoint_path, load_checkpoint

    assert cli.main(["info"]) == 0
    out = capsys.readouterr().out
    # The bundled model; `gestura params` counts its config, which has no planner (6,656,557).
    tensors = load_checkpoint(default_checkpoint_path()).tensors
    total = sum(t.size for t in tensors.values())
    planner = sum(t.size for name, t in tensors.items() if name.startswith("generator.planner."))
    assert f"{total:,} parameters, stage 'full', with a stroke planner ({planner:,} of the parameters)" in out
    assert "  styles: 1_avery, 2_bodhi (default), 3_carmen, 4_dmitri\n" in out
