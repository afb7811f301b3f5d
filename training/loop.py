"""Shared training machinery for every stage: distributed setup, seeds, mixed precision, the
resumable state file, the human-readable log and loss plot, progress bars, and the loop itself.

One code path for one CPU, one GPU and several GPUs: under ``torchrun`` (RANK / WORLD_SIZE /
LOCAL_RANK in the environment) the model is wrapped in DistributedDataParallel with the nccl
backend on CUDA and gloo on the CPU; otherwise it runs as a single process.

Resuming: ``OUT/state.safetensors`` holds the weights, the optimizer moments, the step, the
weights' moving average with ``--ema`` and the config (safetensors + JSON metadata; nothing is
pickled). Data order and every random draw are
functions of (seed, epoch, step, rank), so a resumed run continues exactly where it stopped.
"""
from __future__ import annotations

import json
import math
import os
import platform
import sys
import time
from contextlib import nullcontext
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Iterator

import numpy as np
import torch

from ..errors import CommandError
from .ema import ParameterEMA, saved_decay

STATE_FILE = "state.safetensors"
LOG_FILE = "train.log"
HISTORY_FILE = "history.jsonl"
PLOT_FILE = "loss.png"


# ----------------------------------------------------------------------------- distribution
@dataclass
class Dist:
    rank: int = 0
    world: int = 1
    local_rank: int = 0
    device: torch.device = field(default_factory=lambda: torch.device("cpu"))

    @property
    def main(self) -> bool:
        return self.rank == 0

    @property
    def enabled(self) -> bool:
        return self.world > 1

    def barrier(self) -> None:
        if self.enabled:
            torch.distributed.barrier()

    def mean(self, value: float) -> float:
        """The mean of a scalar over all processes (for logging)."""
        if not self.enabled:
            return float(value)
        t = torch.tensor([float(value)], dtype=torch.float64, device=self.device if self.device.type == "cuda" else "cpu")
        torch.distributed.all_reduce(t)
        return float(t.item()) / self.world


def setup_distributed(device: str = "auto") -> Dist:
    """Read torchrun's environment; pick the device; start the process group when world > 1."""
    world = int(os.environ.get("WORLD_SIZE", "1"))
    rank = int(os.environ.get("RANK", "0"))
    local_rank = int(os.environ.get("LOCAL_RANK", "0"))
    want_cuda = device.startswith("cuda") or (device == "auto" and torch.cuda.is_available())
    if want_cuda and not torch.cuda.is_available():

        raise CommandError(f"--device {device}: this PyTorch sees no CUDA device; use --device cpu")
    if want_cuda:
        index = local_rank if (world > 1 or ":" not in device) else int(device.split(":")[1])
        torch.cuda.set_device(index)
        dev = torch.device("cuda", index)
    else:
        dev = torch.device("cpu")
    if world > 1 and not torch.distributed.is_initialized():
        torch.distributed.init_process_group(backend="nccl" if dev.type == "cuda" else "gloo")
    return Dist(rank, world, local_rank, dev)


def teardown_distributed(dist: Dist) -> None:
    if dist.enabled and torch.distributed.is_initialized():
        torch.distributed.destroy_process_group()


def run_distributed(args, train: Callable[[object, Dist], int]) -> int:
    """Run ``train(args, dist)`` inside this process's share of a (possibly one-process) group.

    The same entry point serves a plain run and every torchrun worker, so no command needs code
    of its own for several GPUs.
    """
    if args.threads:
        torch.set_num_threads(args.threads)
    dist = setup_distributed(args.device)
    try:
        return train(args, dist)
    finally:
        teardown_distributed(dist)


def seed_everything(seed: int) -> None:
    torch.manual_seed(seed)
    np.random.seed(seed % (2**32))


def step_generator(seed: int, *keys: int) -> torch.Generator:
    """A torch generator that depends only on (seed, keys): masking and sampling are the same
    whether a run was resumed or not."""
    g = torch.Generator()
    g.manual_seed(int(np.random.SeedSequence([seed, *keys]).generate_state(1, np.uint64)[0]) >> 1)
    return g


# ----------------------------------------------------------------------------- mixed precision
class Precision:
    """bf16 autocast on GPUs that support it (no scaler needed), fp16 + GradScaler on older ones."""

    def __init__(self, mode: str, device: torch.device):
        on = device.type == "cuda" and mode in ("auto", "on")
        if mode == "on" and device.type != "cuda":
            print("mixed precision needs CUDA: training in float32 on the CPU", file=sys.stderr)
        self.dtype = None
        if on:
            self.dtype = torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16
        self.device = device
        self.scaler = torch.amp.GradScaler("cuda") if self.dtype == torch.float16 else None

    def autocast(self):
        if self.dtype is None:
            return nullcontext()
        return torch.autocast(device_type="cuda", dtype=self.dtype)

    @property
    def name(self) -> str:
        return {None: "float32", torch.bfloat16: "bf16 autocast", torch.float16: "fp16 autocast"}[self.dtype]


# ----------------------------------------------------------------------------- state file
def save_state(path: Path, model: torch.nn.Module, optimizer: torch.optim.Optimizer, meta: dict,
               extra: dict | None = None) -> None:
    """Weights + optimizer moments (+ a stage's own counters in ``extra``) as tensors, everything
    else as JSON metadata; written atomically."""
    from safetensors.torch import save_file

    tensors = {f"model.{k}": v.detach().cpu().contiguous() for k, v in model.state_dict().items()}
    tensors.update({f"extra.{k}": v.detach().cpu().contiguous() for k, v in (extra or {}).items()})
    opt = optimizer.state_dict()
    for idx, st in opt["state"].items():
        for key, value in st.items():
            t = value if torch.is_tensor(value) else torch.tensor(value)
            tensors[f"optim.{idx}.{key}"] = t.detach().cpu().reshape(-1).contiguous()
    metadata = {"meta": json.dumps(meta), "param_groups": json.dumps(opt["param_groups"])}
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    save_file(tensors, str(tmp), metadata=metadata)
    os.replace(tmp, path)


def read_state_meta(path: Path) -> dict:
    from safetensors import safe_open

    with safe_open(str(path), framework="pt") as f:
        return json.loads(f.metadata()["meta"])


def load_state(path: Path, model: torch.nn.Module, optimizer: torch.optim.Optimizer) -> dict:
    from safetensors import safe_open

    with safe_open(str(path), framework="pt") as f:
        metadata = f.metadata()
        tensors = {k: f.get_tensor(k) for k in f.keys()}
    model.load_state_dict({k[len("model."):]: v for k, v in tensors.items() if k.startswith("model.")})
    state: dict[int, dict] = {}
    current = optimizer.state_dict()
    for name, value in tensors.items():
        if not name.startswith("optim."):
            continue
        _, idx, key = name.split(".", 2)
        state.setdefault(int(idx), {})[key] = value.reshape(()) if key == "step" else value
    for idx, st in state.items():  # moments have the parameter's shape
        param_shape = _param_shapes(optimizer)[idx]
        for key, value in st.items():
            if key != "step":
                st[key] = value.reshape(param_shape)
    groups = json.loads(metadata["param_groups"])
    for group, saved in zip(current["param_groups"], groups):
        saved["params"] = group["params"]
    optimizer.load_state_dict({"state": state, "param_groups": groups})
    meta = json.loads(metadata["meta"])
    meta["extra"] = {k[len("extra."):]: v for k, v in tensors.items() if k.startswith("extra.")}
    return meta


def _param_shapes(optimizer) -> dict[int, torch.Size]:
    shapes, i = {}, 0
    for group in optimizer.param_groups:
        for p in group["params"]:
            shapes[i] = p.shape
            i += 1
    return shapes


# ----------------------------------------------------------------------------- log, plot, progress
class RunLog:
    """``train.log`` (lines a person reads), ``history.jsonl`` (one record per logged step) and
    ``loss.png`` (every logged quantity against the step). Only the main process writes."""

    def __init__(self, out: Path, enabled: bool, resume_step: int = 0):
        self.out, self.enabled = out, enabled
        self.history: list[dict] = []
        if enabled:
            out.mkdir(parents=True, exist_ok=True)
            path = out / HISTORY_FILE
            if path.is_file() and resume_step > 0:
                # Keep what happened up to the state we resume from; drop steps redone after it.
                for line in path.read_text().splitlines():
                    try:
                        rec = json.loads(line)
                    except json.JSONDecodeError:
                        continue
                    if rec.get("step", 0) <= resume_step:
                        self.history.append(rec)
            path.write_text("".join(json.dumps(r) + "\n" for r in self.history))

    def line(self, text: str) -> None:
        if not self.enabled:
            return
        stamp = time.strftime("%Y-%m-%d %H:%M:%S")
        with open(self.out / LOG_FILE, "a") as f:
            f.write(f"{stamp}  {text}\n")

    def record(self, rec: dict) -> None:
        if not self.enabled:
            return
        self.history.append(rec)
        with open(self.out / HISTORY_FILE, "a") as f:
            f.write(json.dumps(rec) + "\n")

    def plot(self) -> Path | None:
        if not self.enabled or not self.history:
            return None
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt

        keys = sorted({k for r in self.history for k in r if k not in ("step", "epoch", "lr", "time", "steps_per_s")})
        groups = [("total loss", [], True), ("loss terms", [], True), ("codebook use", [], False), ("other", [], False)]
        for k in keys:
            if k == "loss" or k.endswith("_loss"):
                groups[0][1].append(k)
            elif k.endswith(("_rec", "_rot", "_vq", "_foot_skate", "_ce", "_latent")) or k in ("rec", "vel"):
                groups[1][1].append(k)
            elif k.endswith(("_perplexity", "_dead_codes", "_reset")):
                groups[2][1].append(k)
            else:
                groups[3][1].append(k)
        groups = [g for g in groups if g[1]]
        fig, axes = plt.subplots(len(groups), 1, figsize=(11, 3.2 * len(groups)), squeeze=False)
        for ax, (title, names, log_scale) in zip(axes[:, 0], groups):
            for k in names:
                pts = [(r["step"], r[k]) for r in self.history if k in r and r[k] is not None and np.isfinite(r[k])]
                if pts:
                    ax.plot(*zip(*pts), label=k, marker="." if len(pts) < 30 else None)
            ax.set_title(title + (" (log scale)" if log_scale else ""))
            ax.set_xlabel("step")
            if log_scale and all(r.get(k, 1) is None or r.get(k, 1) > 0 for r in self.history for k in names):
                from matplotlib.ticker import LogFormatter

                ax.set_yscale("log")
                ax.yaxis.set_major_formatter(LogFormatter())
                ax.yaxis.set_minor_formatter(LogFormatter(labelOnlyBase=False, minor_thresholds=(2, 0.4)))
            ax.legend(fontsize=7, loc="center left", bbox_to_anchor=(1.01, 0.5), ncol=1 + len(names) // 12)
            ax.grid(alpha=0.3)
        fig.tight_layout()
        path = self.out / PLOT_FILE
        fig.savefig(path, dpi=90)
        plt.close(fig)
        return path


class Progress:
    """A one-line progress bar on a terminal; plain lines every 10% elsewhere (log files, CI)."""

    def __init__(self, total: int, label: str, enabled: bool = True, stream=None):
        self.total, self.label, self.enabled = max(total, 1), label, enabled
        self.stream = stream or sys.stderr
        self.tty = self.stream.isatty()
        self.start = time.time()
        self.last_decile = -1

    def update(self, done: int, info: str = "") -> None:
        if not self.enabled:
            return
        frac = min(done / self.total, 1.0)
        elapsed = time.time() - self.start
        eta = elapsed / frac - elapsed if frac > 0 else float("nan")
        if self.tty:
            bar = "#" * int(30 * frac) + "-" * (30 - int(30 * frac))
            self.stream.write(f"\r{self.label} [{bar}] {done}/{self.total} {info} eta {_fmt(eta)}   ")
            if done >= self.total:
                self.stream.write("\n")
            self.stream.flush()
        elif int(frac * 10) > self.last_decile:
            self.last_decile = int(frac * 10)
            self.stream.write(f"{self.label} {done}/{self.total} {info} eta {_fmt(eta)}\n")
            self.stream.flush()


def _fmt(seconds: float) -> str:
    if not np.isfinite(seconds):
        return "?"
    m, s = divmod(int(seconds), 60)
    h, m = divmod(m, 60)
    return f"{h}:{m:02d}:{s:02d}" if h else f"{m}:{s:02d}"


# ----------------------------------------------------------------------------- the loop
def lr_at(step: int, total: int, base: float, warmup: int, schedule: str) -> float:
    if warmup > 0 and step < warmup:
        return base * (step + 1) / warmup
    if schedule == "cosine" and total > warmup:
        progress = min(max((step - warmup) / max(total - warmup, 1), 0.0), 1.0)
        return base * (0.1 + 0.9 * 0.5 * (1 + math.cos(math.pi * progress)))
    return base


def epoch_order(num_items: int, seed: int, epoch: int, batch: int, dist: Dist) -> np.ndarray:
    """(steps, batch) item indices this process uses in ``epoch``: a permutation shared by all
    processes (seeded by seed and epoch), dealt out by rank. Every process gets the same number
    of full batches (the permutation is cycled when there are few items), as DDP requires."""
    perm = np.random.default_rng([seed, epoch]).permutation(num_items)
    steps = max(1, num_items // (batch * dist.world))
    needed = steps * batch * dist.world
    perm = np.resize(perm, needed)  # cycles when there are fewer items than one global batch
    return perm.reshape(steps, dist.world, batch)[:, dist.rank]


@dataclass
class LoopSpec:
    """What a stage gives the loop."""

    name: str  # for messages: "train-vq", "train"
    model: torch.nn.Module  # the trainable module (wrapped in DDP here)
    num_items: int  # training windows
    make_batch: Callable[[np.ndarray, int], dict]  # (item indices, epoch) -> tensors on the device
    # (model, batch, generator, step, total steps) -> (loss, logs)
    loss: Callable[[torch.nn.Module, dict, torch.Generator, int, int], tuple[torch.Tensor, dict]]
    export: Callable[[torch.nn.Module, int], Path]  # (bare model, step) -> checkpoint written
    config_json: str  # the state must match it to be resumed
    notes: list[str] = field(default_factory=list)  # lines for the top of train.log (data, skipped clips)
    after_step: Callable[[torch.nn.Module, dict, int], dict] | None = None  # e.g. dead-code reset
    validate: Callable[[torch.nn.Module], dict] | None = None  # -> logs, at each epoch end
    # A stage's own counters that a resumed run needs (e.g. code usage since the last reset).
    state_tensors: Callable[[], dict] | None = None
    load_state_tensors: Callable[[dict], None] | None = None


def run_loop(spec: LoopSpec, args, dist: Dist) -> dict:
    """Train; returns a summary (steps, first and last loss, steps per second, paths)."""
    out = Path(args.out)
    model = spec.model.to(dist.device)
    optimizer = torch.optim.AdamW(
        [p for p in model.parameters() if p.requires_grad], lr=args.lr, betas=(0.9, 0.999), weight_decay=args.weight_decay
    )
    steps_per_epoch = max(1, spec.num_items // (args.batch_size * dist.world))
    total = args.steps if args.steps else args.epochs * steps_per_epoch
    state_path = out / STATE_FILE
    step = 0
    extra: dict = {}
    if state_path.is_file() and not args.fresh:

        try:
            meta = read_state_meta(state_path)
        except Exception as error:  # cut short by a crash mid-write is impossible (atomic), but a copy can be
            raise CommandError(f"{state_path} cannot be read ({error}): pass --fresh to start over") from None
        if meta.get("config") != spec.config_json:
            raise CommandError(
                f"{state_path} was written with other settings (model config or stage options); "
                "pass --fresh to start over, or choose another --out"
            )
        meta = load_state(state_path, model, optimizer)
        step = int(meta["step"])
        if spec.load_state_tensors is not None:
            spec.load_state_tensors(meta["extra"])
        extra = meta["extra"]
    ema = ParameterEMA(model, args.ema) if args.ema else None  # from the resumed weights, if any
    ema_notes = [f"weights exported{' and validated' if spec.validate else ''}: their moving average (EMA decay "
                 f"{args.ema:g})"] if ema else []
    if step:
        ema_notes += _continue_average(ema, extra, step)
    log = RunLog(out, dist.main, resume_step=step)
    if dist.main:
        how = f"resuming at step {step}" if step else "starting"
        log.line(
            f"{spec.name}: {how}; {total} steps ({steps_per_epoch} per epoch), batch {args.batch_size} x "
            f"{dist.world} process(es), lr {args.lr:g} {args.schedule}, device {dist.device}, "
            f"{Precision(args.amp, dist.device).name}; {platform.processor() or platform.machine()}, "
            f"{os.cpu_count()} CPUs, torch {torch.__version__}"
        )
        for note in spec.notes + ema_notes:
            log.line(note)
        average = f", exporting the weights' moving average (EMA decay {args.ema:g})" if ema else ""
        print(f"{spec.name}: {how}, {total} steps{average}, log in {out / LOG_FILE}", file=sys.stderr)
    train_model = model
    if dist.enabled:
        from torch.nn.parallel import DistributedDataParallel

        train_model = DistributedDataParallel(
            model, device_ids=[dist.device.index] if dist.device.type == "cuda" else None
        )
    precision = Precision(args.amp, dist.device)
    progress = Progress(total, spec.name, enabled=dist.main and not args.no_progress)
    # A resumed run's first loss is the run's, kept in the history it resumes (main process only).
    first = next((r["loss"] for r in log.history if "loss" in r), None)
    summary: dict = {"start_step": step, "first": first, "last": None}
    window_logs: dict[str, list[float]] = {}
    t_window, steps_in_window = time.time(), 0
    t_start, start_step = time.time(), step
    last_save = time.time()
    exported = None
    model.train()
    try:
        while step < total:
            epoch = step // steps_per_epoch
            order = epoch_order(spec.num_items, args.seed, epoch, args.batch_size, dist)
            for i in range(step % steps_per_epoch, len(order)):
                if step >= total:
                    break
                batch = spec.make_batch(order[i], epoch)
                gen = step_generator(args.seed, step, dist.rank)
                for group in optimizer.param_groups:
                    group["lr"] = lr_at(step, total, args.lr, args.warmup, args.schedule)
                with precision.autocast():
                    loss, logs = spec.loss(train_model, batch, gen, step, total)
                optimizer.zero_grad(set_to_none=True)
                if not torch.isfinite(loss):

                    raise CommandError(
                        f"the loss became {loss.item()} at step {step}: lower --lr (or --amp off); the last "
                        f"saved state in {state_path} is kept"
                    )
                if precision.scaler is not None:
                    precision.scaler.scale(loss).backward()
                    precision.scaler.unscale_(optimizer)
                else:
                    loss.backward()
                if args.clip > 0:
                    torch.nn.utils.clip_grad_norm_(model.parameters(), args.clip)
                if precision.scaler is not None:
                    precision.scaler.step(optimizer)
                    precision.scaler.update()
                else:
                    optimizer.step()
                if ema is not None:
                    ema.update(model)
                step += 1
                steps_in_window += 1
                if spec.after_step is not None:
                    logs.update(spec.after_step(model, batch, step))
                logs["loss"] = float(loss.detach())
                for k, v in logs.items():
                    window_logs.setdefault(k, []).append(float(v))
                if step % args.log_every == 0 or step == total:
                    rec = {k: dist.mean(float(np.mean(v))) for k, v in window_logs.items()}
                    elapsed = time.time() - t_window
                    rec.update(step=step, epoch=epoch, lr=optimizer.param_groups[0]["lr"],
                               steps_per_s=steps_in_window / max(elapsed, 1e-9))
                    if summary["first"] is None:
                        summary["first"] = rec["loss"]
                    summary["last"] = rec["loss"]
                    log.record(rec)
                    log.line(_describe(rec))
                    window_logs, t_window, steps_in_window = {}, time.time(), 0
                progress.update(step, f"loss {logs['loss']:.4f}")
                if args.save_every and step % args.save_every == 0:
                    _save(spec, model, optimizer, state_path, step, dist, log, ema)
                    last_save = time.time()
            if step % steps_per_epoch == 0 or step >= total:
                if spec.validate is not None and ((epoch + 1) % args.val_every == 0 or step >= total):
                    model.eval()
                    with torch.no_grad(), precision.autocast(), _averaged(ema, model):
                        val = spec.validate(model)
                    model.train()
                    if val:
                        val = {k: dist.mean(v) for k, v in val.items()}
                        log.record({"step": step, "epoch": epoch, **val})
                        log.line(f"epoch {epoch} validation: " + ", ".join(f"{k} {v:.4f}" for k, v in val.items()))
                # Saving costs seconds (state, checkpoint, plot): at most every --save-minutes at epoch ends.
                if step >= total or time.time() - last_save >= 60 * args.save_minutes:
                    exported = _save(spec, model, optimizer, state_path, step, dist, log, ema)
                    last_save = time.time()
    except KeyboardInterrupt:
        # Keep what was learned: the same command resumes from here (at most one step repeats).
        if not dist.enabled:
            _save(spec, model, optimizer, state_path, step, dist, log, ema, export=False)
            log.line(f"interrupted at step {step}; run the same command to resume")
        raise
    ran = step - start_step
    if exported is None and dist.main:
        with _averaged(ema, model):
            exported = spec.export(model, step)
    summary.update(
        steps=step, steps_run=ran, steps_per_s=ran / max(time.time() - t_start, 1e-9),
        state=str(state_path), checkpoint=str(exported) if dist.main else None,
    )
    if dist.main:
        plot = log.plot()
        log.line(f"done: {step} steps; checkpoint {summary['checkpoint']}; plot {plot}")
        print(f"{spec.name}: done, checkpoint {summary['checkpoint']}", file=sys.stderr)
    dist.barrier()
    return summary


def _save(spec: LoopSpec, model, optimizer, state_path: Path, step: int, dist: Dist, log: RunLog,
          ema: ParameterEMA | None, export: bool = True) -> Path | None:
    """Write the resumable state and (``export``) the checkpoint, which holds the moving average
    of the weights when there is one."""
    exported = None
    if dist.main:
        extra = dict(spec.state_tensors()) if spec.state_tensors is not None else {}
        if ema is not None:
            extra.update(ema.state_tensors())
        save_state(state_path, model, optimizer, {"step": step, "config": spec.config_json}, extra)
        if export:
            with _averaged(ema, model):
                exported = spec.export(model, step)
            log.plot()
    dist.barrier()
    return exported


def _continue_average(ema: ParameterEMA | None, extra: dict, step: int) -> list[str]:
    """Take the resumed state's average into ``ema`` (which otherwise starts from the resumed
    weights); what ``train.log`` says where the state's average and ``--ema`` differ."""
    saved = saved_decay(extra)
    if ema is None:
        return [f"the state's moving average (EMA decay {saved:g}) is dropped: --ema 0 exports the last step's "
                "weights"] if saved is not None else []
    if not ema.load_state_tensors(extra):
        return [f"the moving average starts at step {step}: the state resumed from held none"]
    if saved is not None and saved != ema.decay:
        return [f"the state's moving average, made at EMA decay {saved:g} up to step {step}, goes on at {ema.decay:g}"]
    return []


def _averaged(ema: ParameterEMA | None, model):
    """The block sees the model with its averaged weights (its own with no average)."""
    return ema.applied(model) if ema is not None else nullcontext()


def _describe(rec: dict) -> str:
    skip = ("step", "epoch", "lr", "steps_per_s")
    parts = [f"step {rec['step']:>7d}", f"epoch {rec['epoch']:>4d}", f"lr {rec['lr']:.2e}"]
    parts += [f"{k} {v:.4f}" for k, v in sorted(rec.items()) if k not in skip]
    parts.append(f"{rec['steps_per_s']:.2f} steps/s")
    return "  ".join(parts)


def iterate_chunks(items: list, size: int) -> Iterator[list]:
    for i in range(0, len(items), size):
        yield items[i : i + size]
