"""Multi-process training through torchrun on the CPU (gloo): the same commands, no code changes."""
import json
import os
import subprocess
import sys

from beat2_fixture import default_clips, make_beat2

from gestura.inference.checkpoint import load_checkpoint

# Two processes start torch and train both stages: about 20 s on 2 idle cores (not `slow`).
TINY = ["--set", "vq_hidden=16", "--set", "code_dim=8", "--set", "codebook_size=16", "--set", "gmp_hidden=16"]
TINY_GEN = ["--set", "d_model=16", "--set", "speech_layers=1", "--set", "global_layers=1", "--set", "mlp_ratio=0",
            "--set", 'local_layers={"face": 1, "upper": 1, "hands": 1, "lower": 1}']
LOOP = ["--no-progress", "--threads", "1", "--window", "32", "--batch-size", "4", "--log-every", "2"]


def torchrun(*args: str) -> subprocess.CompletedProcess:
    env = dict(os.environ, OMP_NUM_THREADS="1")
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2", "-m", "gestura", *args]
    return subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=600)


def test_torchrun_two_cpu_processes_train_both_stages(tmp_path):
    data = make_beat2(tmp_path / "data", default_clips(speakers=(2, 4), per_speaker=2, seconds=3.0))
    vq = tmp_path / "vq"
    done = torchrun("train-vq", "--data", str(data), "--out", str(vq), "--steps", "4", *TINY, *LOOP)
    assert done.returncode == 0, done.stdout + done.stderr
    log = (vq / "train.log").read_text()
    assert "x 2 process(es)" in log and "done: 4 steps" in log
    assert load_checkpoint(vq / "vq.safetensors").stage == "vq"

    gen = tmp_path / "gen"
    done = torchrun("train", "--data", str(data), "--vq", str(vq / "vq.safetensors"), "--out", str(gen),
                    "--steps", "4", *TINY_GEN, *LOOP)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "x 2 process(es)" in (gen / "train.log").read_text()
    assert load_checkpoint(gen / "gestura.safetensors").stage == "full"
    records = [json.loads(line) for line in (gen / "history.jsonl").read_text().splitlines()]
    assert [r["step"] for r in records] == [2, 4]  # one log record per step window, written by rank 0 only
