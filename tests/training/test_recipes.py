"""The training recipes (``training/recipe.sh``, ``training/recipe_dim.sh``) run hours, so CI
cannot run them; what it can check is that every command they give is one this version's
``gestura`` accepts, in the order the README describes, and that they refuse what they cannot use.

Each recipe runs as written, in a copy of its folder, with ``GESTURA`` pointing at a stand-in that
parses the command line with the real parser (``cli.build_parser``), records it, and writes the
files that command would write, so that the recipe's next steps and checks find their inputs.
"""
from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]

STAND_IN = """\
#!{python}
import json, sys
from pathlib import Path
from gestura.cli import build_parser

args, unknown = build_parser().parse_known_args(sys.argv[1:])
if unknown:
    sys.exit(f"gestura {{args.command}}: error: unrecognized arguments: {{' '.join(unknown)}}")
with open({log!r}, "a") as log:
    log.write(json.dumps(sys.argv[1:]) + "\\n")
out = Path(args.out) if getattr(args, "out", None) else None
if args.command == "synth":
    out.mkdir(parents=True, exist_ok=True)
    (out / "synth.json").write_text("{{}}")
    (out / "train_test_split.csv").write_text("id,type\\n")
elif args.command in ("train", "train-vq"):
    out.mkdir(parents=True, exist_ok=True)
    (out / "gestura.safetensors").write_bytes(b"")
    (out / "vq.safetensors").write_bytes(b"")
elif args.command == "train-fgd":
    out.mkdir(parents=True, exist_ok=True)
    (out / "fgd_encoder.safetensors").write_bytes(b"")
elif args.command == "eval" and args.json:
    Path(args.json).write_text("{{}}")
"""


def run_recipe(tmp_path: Path, recipe: str, env: dict[str, str]) -> tuple[subprocess.CompletedProcess, list[list[str]]]:
    """Run ``training/<recipe>`` from a copy of the repository's layout in ``tmp_path``; returns
    the process and the gestura command lines it gave, in order."""
    root = tmp_path / "repo"
    (root / "training").mkdir(parents=True)
    shutil.copy(REPO / "training" / recipe, root / "training" / recipe)
    log = tmp_path / "commands.jsonl"
    stand_in = tmp_path / "gestura"
    stand_in.write_text(STAND_IN.format(python=sys.executable, log=str(log)))
    stand_in.chmod(0o755)
    # HOME too: a folder a recipe defaults to that the test does not name lands here, not in the user's cache.
    full_env = {**os.environ, "HOME": str(tmp_path / "home"), "GESTURA": str(stand_in),
                "CORPUS": str(tmp_path / "corpus"), "CORPUS_MORE": str(tmp_path / "corpus-more"),
                "CORPUS_LONG": str(tmp_path / "corpus-long"), "RUNS": str(tmp_path / "runs"), **env}
    process = subprocess.run(["bash", str(root / "training" / recipe)], env=full_env, cwd=root,
                             capture_output=True, text=True, timeout=300)
    lines = log.read_text().splitlines() if log.exists() else []
    return process, [json.loads(line) for line in lines]


def option(argv: list[str], name: str) -> str | None:
    return argv[argv.index(name) + 1] if name in argv else None


def test_the_bundled_models_recipe_gives_commands_this_version_accepts_and_copies_its_result_into_weights(tmp_path):
    process, commands = run_recipe(tmp_path, "recipe.sh", {})
    assert process.returncode == 0, process.stderr
    assert [argv[0] for argv in commands] == [
        "synth", "train-vq", "train-vq", "train", "train-vq", "train-vq", "train-vq", "synth", "train",
        "train-vq", "train-vq", "synth", "train", "train-fgd", "eval"]
    # Each step starts from the one before it: the planner from the last jerk tuning, the decoders from the planner.
    inits = [option(argv, "--init") for argv in commands if option(argv, "--init")]
    outs = {option(argv, "--out") for argv in commands}
    assert all(str(Path(init).parent) in outs for init in inits)
    assert {option(argv, "--out") for argv in commands if argv[0] == "synth"} == {
        str(tmp_path / name) for name in ("corpus", "corpus-more", "corpus-long")}
    assert option(commands[-1], "--checkpoint") == option(commands[-3], "--out") + "/gestura.safetensors"
    assert (tmp_path / "repo" / "weights" / "gestura-small.safetensors").is_file()


def test_the_dim_gestor_recipe_trains_the_diffusion_model_then_three_decoder_steps_and_evaluates(tmp_path):
    vq, fgd = tmp_path / "stage1.safetensors", tmp_path / "runs" / "fgd" / "fgd_encoder.safetensors"
    fgd.parent.mkdir(parents=True)
    planner = tmp_path / "runs" / "planner" / "gestura.safetensors"
    for path in (vq, fgd, planner, tmp_path / "corpus" / "train_test_split.csv"):
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(b"")
    process, commands = run_recipe(tmp_path, "recipe_dim.sh", {"VQ": str(vq)})
    assert process.returncode == 0, process.stderr
    assert [argv[0] for argv in commands] == ["train", "train-vq", "train-vq", "train-vq", "eval"]
    train, plan_decoders, lookahead, denoised, evaluate = commands
    assert option(train, "--family") == "dim-gestor" and option(train, "--vq") == str(vq)
    assert option(train, "--planner-from") == str(planner) and "--set" not in train
    assert [option(argv, "--w-jerk") for argv in (plan_decoders, lookahead, denoised)] == ["20"] * 3
    assert option(lookahead, "--decoder-lookahead") == "2" and option(denoised, "--denoised") == "0.5"
    assert option(evaluate, "--checkpoint") == str(tmp_path / "runs" / "dim-gestor" / "gestura.safetensors")
    assert (tmp_path / "runs" / "dim-gestor" / "gestura.safetensors").is_file()
    assert not (tmp_path / "repo" / "weights").exists()  # the bundled model untouched

    process, commands = run_recipe(tmp_path / "baseline", "recipe_dim.sh",
                                   {"VQ": str(vq), "MODEL": "transformer", "CORPUS": str(tmp_path / "corpus"),
                                    "PLANNER": str(planner)})
    assert process.returncode == 0, process.stderr
    assert [argv[0] for argv in commands] == ["train", "train-vq", "train-vq"]  # no FGD encoder in its RUNS: no eval
    assert option(commands[0], "--set") == "denoiser_block=attention"
    assert [option(argv, "--w-jerk") for argv in commands[1:]] == ["160", "160"]


@pytest.mark.parametrize("env, message", [
    ({"MODEL": "dit"}, "MODEL must be dim-gestor or transformer, not 'dit'"),
    ({}, "train_test_split.csv is missing: run training/recipe.sh first, or set CORPUS, VQ or PLANNER"),
])
def test_the_dim_gestor_recipe_refuses_what_it_cannot_use_in_one_line_before_training(tmp_path, env, message):
    process, commands = run_recipe(tmp_path, "recipe_dim.sh", env)
    assert process.returncode == 2 and commands == []
    assert message in process.stderr and len(process.stderr.strip().splitlines()) == 1
