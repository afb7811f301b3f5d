"""Stage 2: speech -> per-part codes, a span at a time (``gestura train --data DIR --vq CKPT``).

The stage-1 VQ-VAEs are frozen; every training clip is encoded to codes once. The generator is
trained on windows of ``prefix_codes + span_codes`` codes as a masked model (MaskGIT, MoMask):
``span_mask`` hides part of each window in runs of codes (the prefix stands for the previous
span's tail, known or not), whole parts with probability ``--part-drop`` (parts switched off), and
the loss is the cross-entropy of the hidden codes. The stroke-apex head learns the corpus's
planned apexes (``gestura synth`` writes them; other data gets ``metrics.derive_stroke_apexes``)
with ``--apex-weight`` x binary cross-entropy, and the body reads the corpus's stroke plan
(``inference/stroke_plan.py``), so that it learns to realise a plan on time. At the end the
checkpoint's ``apex_threshold`` is calibrated so that the head, at generation, plans as many
apexes as the val clips have (the train clips when there is no val split). The style embedding
has one entry per speaker present in the data.
"""
from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from torch import nn

from ..errors import CommandError
from ..inference.features import FEATURE_DIM, energy_db, normalize, pitch_features
from ..inference.stroke_plan import apex_bumps, calibrate_threshold, plan_apexes, spoken_frames
from ..rigs.skeleton import FPS, PARTS
from .common import data_notes, load_data, log, model_config, training_stats
from .dataset import read_wave, take_window, window_index
from .ema import checkpoint_metadata
from .loop import LoopSpec, run_distributed, run_loop, seed_everything

CHECKPOINT_NAME = "gestura.safetensors"
CALIBRATION_CLIPS = 40  # train clips the apex threshold is calibrated on when there is no val split


class Stage2(nn.Module):
    """Frozen VQ-VAEs + the generator; ``forward`` returns the losses (DDP hooks forward)."""

    def __init__(self, model, apex_weight: float = 1.0):
        super().__init__()
        self.model = model
        self.apex_weight = apex_weight
        for name, param in model.named_parameters():
            param.requires_grad_(name.startswith("generator."))

    def forward(self, features, style, codes: dict, hidden, plan):
        from ..inference.torch_model.generator import generator_losses

        known = torch.stack([codes[p] for p in PARTS], -1).masked_fill(hidden, -1)
        codebooks = {p: w.detach() for p, w in self.model.codebooks().items()}
        logits, apex_logits = self.model.generator(features, style, codebooks, known, plan)
        losses = generator_losses({p: v.float() for p, v in logits.items()}, codes, hidden,
                                  apex_logits.float(), plan, self.apex_weight)
        with torch.no_grad():
            for i, p in enumerate(PARTS):
                h = hidden[..., i]
                if bool(h.any()):
                    losses[f"{p}_acc"] = (logits[p].argmax(-1)[h] == codes[p][h]).float().mean()
        return losses


def read_vq(paths: list[str]):
    """{part: Checkpoint} choosing, for each part, the last given checkpoint that trained it."""
    from ..inference.checkpoint import CheckpointError, load_checkpoint

    chosen: dict = {}
    configs = []
    for path in paths:
        try:
            ckpt = load_checkpoint(path)
        except CheckpointError as error:
            raise CommandError(str(error)) from None
        trained = json.loads(ckpt.metadata.get("trained_parts", json.dumps(list(PARTS))))
        configs.append(ckpt.config.for_styles(1))  # stage 1 does not depend on the styles
        for part in trained:
            chosen[part] = ckpt
    if any(c != configs[0] for c in configs):
        raise CommandError("the --vq checkpoints have different model configs: train every part with the same --config/--set")
    missing = [p for p in PARTS if p not in chosen]
    if missing:
        raise CommandError(
            f"part(s) {', '.join(missing)} not trained in any --vq checkpoint: run gestura train-vq --part "
            f"{','.join(missing)} first (or --part all)"
        )
    return chosen


def main(args) -> int:
    if args.stroke_planner:
        from .train_planner import main as train_planner

        return train_planner(args)
    return run_distributed(args, _train)


@dataclass
class Stage2Setup:
    """What both stage-2 trainers start from: the model with the frozen stage-1 weights in it."""
    model: object
    config: object
    data: object
    stats: dict
    length: int  # training window in frames
    device: object
    lineage: dict  # metadata the checkpoint keeps from its --vq and --init files


# Config fields a trained generator sets for itself: how many codes its spans carry, its plan's
# calibrated threshold, whether it has a stroke planner (and what that hears), and the style it
# generates in when none is named.
GENERATOR_OWN = ("carried_codes", "apex_threshold", "stroke_planner", "planner_pitch", "default_style")


def setup_stage2(args, dist, family: str = "vq-mamba") -> Stage2Setup:
    """Seed, read the --vq checkpoints and the train split, and build a ``family`` model holding
    the VQ-VAEs (and their part statistics) with the config's generator fields from
    ``FAMILY_DEFAULTS`` and ``--set``; CommandError for anything that does not fit."""
    from ..inference.config import FAMILY_DEFAULTS, ModelConfig
    from ..inference.torch_model.model import GesturaModel

    seed_everything(args.seed)
    vq = read_vq(args.vq)
    data = load_data(args, dist, ("train",))
    log(dist, f"train: {data.describe()}")
    base = next(iter(vq.values())).config
    # Generator fields may be overridden; VQ fields must match the stage-1 weights. The audio
    # features are this Gestura's, whatever the stage-1 file recorded. What a trained generator
    # chose for itself stays with it: a --vq file that is a whole model lends only its VQ-VAEs, and
    # the model continued (--init) keeps its own, bar --set.
    init = _read_init(args.init, data.styles) if args.init else None
    own = {f: getattr(ModelConfig if init is None else init.config, f) for f in GENERATOR_OWN}
    planner = _planner_source(args, init, data.styles) if family == "dim-gestor" else None
    if planner is not None:
        own.update(planner_fields(planner.config))
    config = model_config(args, len(data.styles), base=base,
                          defaults={"feature_dim": FEATURE_DIM, "family": family, **own, **FAMILY_DEFAULTS[family]})
    vq_fields = ("frames_per_code", "codebook_size", "code_dim", "vq_hidden", "vq_layers", "gmp_hidden",
                 "gmp_layers")
    changed = [f for f in vq_fields if getattr(config, f) != getattr(base, f)]
    if changed:
        raise CommandError(f"--set changes stage-1 fields {changed} that the --vq weights fix; leave them out")
    r = config.frames_per_code
    length = args.window or (config.prefix_codes + config.span_codes) * r
    if length % r or length // r <= config.prefix_codes:
        raise CommandError(f"--window {length} must be a multiple of frames_per_code ({r}) longer than the "
                           f"prefix ({config.prefix_codes} codes, {config.prefix_codes * r} frames)")
    model = GesturaModel(config, with_generator=True)
    if init is not None:
        _load_init(model, init, config)
    stats = training_stats(data)  # audio statistics and joint speeds from this data...
    # ...but the audio as the speech scans already learnt to hear it: a continued model's own
    # normalisation (its stroke planner, which this training leaves alone, heard that too), or the
    # planner's a dim-gestor model reads its plan from (both scans read the same features).
    heard = planner if planner is not None else init
    if planner is not None:
        copy_planner(model, planner)
    if heard is not None:
        stats["audio_mean"], stats["audio_std"] = heard.stats["audio_mean"], heard.stats["audio_std"]
    with torch.no_grad():
        for part, ckpt in vq.items():  # ...part statistics from the VQ that learned them
            tensors = {k: v for k, v in ckpt.tensors.items() if k.startswith(f"vq.{part}.") or
                       (part == "lower" and k.startswith("gmp."))}
            own = model.state_dict()
            for name, value in tensors.items():
                own[name].copy_(torch.as_tensor(value))
            stats[f"{part}_mean"], stats[f"{part}_std"] = ckpt.stats[f"{part}_mean"], ckpt.stats[f"{part}_std"]
    model.to(dist.device)
    # Fine-tuned decoders arrive with --vq and go out with the checkpoint: say so in it.
    lineage = {key: ckpt.metadata[key] for ckpt in vq.values() for key in ("decoders_fine_tuned",)
               if key in ckpt.metadata}
    if args.init:
        lineage["init"] = str(Path(args.init).resolve())
        if "stroke_planner" in init.metadata and init.config.stroke_planner:  # how its planner was trained
            lineage["stroke_planner"] = init.metadata["stroke_planner"]
    if planner is not None:
        lineage["planner_from"] = str(Path(planner.path).resolve())
    return Stage2Setup(model, config, data, stats, length, dist.device, lineage)


def planner_fields(config) -> dict:
    """The config fields that go with a stroke planner (its plan's calibrated threshold and its
    styles' stroke rates come with it)."""
    return {"stroke_planner": True, "planner_pitch": config.planner_pitch, "apex_threshold": config.apex_threshold,
            "apex_rates": tuple(config.apex_rates)}


def _planner_source(args, init, styles: list):
    """The checkpoint whose stroke planner a dim-gestor model reads its plan from: ``--planner-from``
    (a full checkpoint with a planner, trained on the same speakers), else the --init model's own
    planner, else None (no plan); CommandError when it cannot serve."""
    from ..inference.checkpoint import CheckpointError, load_checkpoint

    path = args.planner_from
    if path is None:
        return init if init is not None and init.config.stroke_planner else None
    try:
        source = load_checkpoint(path)
    except CheckpointError as error:
        raise CommandError(str(error)) from None
    if source.stage != "full" or not source.config.stroke_planner:
        raise CommandError(f"--planner-from {path} has no stroke planner: give a model trained with "
                           "gestura train --stroke-planner (the bundled model has one)")
    if list(source.styles) != list(styles):
        raise CommandError(f"--planner-from {path} plans for speakers {', '.join(source.styles)}, this data has "
                           f"{', '.join(styles)}: train with the same --speakers")
    return source


def copy_planner(model, source) -> None:
    """Copy ``source``'s ``generator.planner`` weights into ``model``; CommandError when the two
    planners' sizes differ (they follow d_model, the speech and window layers and the look-ahead)."""
    prefix = "generator.planner."
    own = {k: v for k, v in model.state_dict().items() if k.startswith(prefix)}
    theirs = {k: v for k, v in source.tensors.items() if k.startswith(prefix)}
    # The look-ahead changes no shape but what each frame's pair of states means.
    differ = sorted(k for k in set(own) | set(theirs)
                    if k not in own or k not in theirs or tuple(own[k].shape) != tuple(np.shape(theirs[k])))
    differ += ["lookahead"] if model.config.lookahead != source.config.lookahead else []
    if differ:
        raise CommandError(f"the stroke planner of {source.path} does not fit this model ({differ[0]}"
                           + (f" and {len(differ) - 1} more differ" if len(differ) > 1 else " differs")
                           + "): --set d_model, mlp_ratio, speech_layers, speech_window_layers, d_state and "
                             "lookahead as that model has them")
    with torch.no_grad():
        for name, value in own.items():
            value.copy_(torch.as_tensor(np.asarray(theirs[name])))


def _read_init(path: str, styles: list):
    """The full checkpoint ``path`` stage 2 continues from, or CommandError when it cannot (stage 1
    only, or another speaker list)."""
    from ..inference.checkpoint import CheckpointError, load_checkpoint

    try:
        init = load_checkpoint(path)
    except CheckpointError as error:
        raise CommandError(str(error)) from None
    if init.stage != "full":
        raise CommandError(f"--init {path} holds stage 1 only: pass it to --vq, or give a full checkpoint to --init")
    if list(init.styles) != list(styles):
        raise CommandError(f"--init {path} was trained on speakers {', '.join(init.styles)}, this data has "
                           f"{', '.join(styles)}: train with the same --speakers, or start fresh without --init")
    return init


def _load_init(model, init, config) -> None:
    """Copy the stage-2 weights of the full checkpoint ``init`` into ``model``; CommandError when
    they cannot continue here (another family or config)."""
    # The threshold and the rates are calibrated again at the end, so they may differ; the default
    # style only picks a row of the style embedding, so --set may choose another.
    theirs = init.config.to_dict()
    differ = [name for name, value in config.to_dict().items()
              if name not in ("apex_threshold", "apex_rates", "default_style") and theirs.get(name) != value]
    if differ:
        raise CommandError(f"--init {init.path} has another model ({', '.join(differ)} differ): leave out --family/--set "
                           "values it was not trained with")
    own = model.state_dict()
    with torch.no_grad():
        for name, value in init.tensors.items():
            if name.startswith("generator."):
                own[name].copy_(torch.as_tensor(value))


def save_stage2(model, args, styles: list, stats: dict, step: int, lineage: dict) -> Path:
    """Write a stage-2 trainer's checkpoint, ``--out``/gestura.safetensors, with where it came from
    (``lineage``: ``Stage2Setup.lineage``)."""
    from ..inference.checkpoint import CheckpointError

    try:
        return model.save(
            Path(args.out) / CHECKPOINT_NAME, styles=styles, stats=stats, stage="full",
            extra_metadata={
                "trained_steps": str(step),
                **checkpoint_metadata(args.ema),
                "train_data": str(Path(args.data).resolve()),
                "speakers": args.speakers,
                "vq": json.dumps([str(Path(p).resolve()) for p in args.vq]),
                **lineage,
            },
        )
    except CheckpointError as error:
        raise CommandError(str(error)) from None


def _train(args, dist) -> int:
    from ..inference.torch_model.generator import span_mask

    setup = setup_stage2(args, dist)
    model, config, data, stats, length, device = (setup.model, setup.config, setup.data, setup.stats,
                                                   setup.length, setup.device)
    styles = data.styles
    r = config.frames_per_code
    stage = Stage2(model, args.apex_weight)
    feats, codes, apexes = encode_clips(model, data.clips, stats, device)
    style_ids = [data.style_index(clip) for clip in data.clips]
    usage = {p: len(np.unique(np.concatenate([c[p] for c in codes]))) for p in PARTS}
    log(dist, "train: codes in use per part " + ", ".join(f"{p} {n}/{config.codebook_size}" for p, n in usage.items()))

    stride = args.stride or max(length // 2, 1)
    index = window_index(data.clips, length, stride)
    n_codes = length // r

    variants = speech_variants(args, dist, data.clips, stats)

    def make_batch(items: np.ndarray, epoch: int) -> dict:
        rng = np.random.default_rng([args.seed, epoch, int(items[0])])
        starts, batch = speech_batch(index[items], feats, style_ids, config, length, device, variants, rng)
        return {
            **batch,
            "codes": {p: torch.from_numpy(np.stack([take_window(codes[c][p], k, n_codes) for c, k in starts]))
                      .long().to(device) for p in PARTS},
            "apex": torch.from_numpy(np.stack([take_window(apexes[c], k * r, length) for c, k in starts])).to(device),
        }

    def loss(m, batch, gen, step, total):
        b = batch["style"].shape[0]
        hidden = span_mask(b, n_codes, prefix=config.prefix_codes, part_drop=args.part_drop, generator=gen).to(device)
        out = m(batch["features"], batch["style"], batch["codes"], hidden, batch["apex"])
        logs = {k: v.detach() for k, v in out.items() if k != "loss"}
        return out["loss"], logs

    validate = None
    val = load_data(args, dist, ("val",)) if args.val else None
    if val is not None:
        if val.clips:
            validate = _validator(stage, val, stats, styles, n_codes, device)
        else:
            log(dist, "train: no 'val' clips, no validation")
    if val is not None and val.clips:
        calibration = [calibration_clip(normalized_features(c, stats, config.planner_pitch), c,
                                        styles.index(c.ref.style) if c.ref.style in styles else 0) for c in val.clips]
        calibration_source = f"the {len(calibration)} val clips"
    else:
        calibration = [calibration_clip(normalized_features(data.clips[i], stats, config.planner_pitch), data.clips[i],
                                        style_ids[i]) for i in range(min(len(feats), CALIBRATION_CLIPS))]
        calibration_source = f"{len(calibration)} train clips"

    def export(m, step) -> Path:
        threshold = calibrate_apex_threshold(model, calibration, device)
        log(dist, f"train: apex_threshold {threshold:.4f}: the head plans as many stroke apexes as "
                  f"{calibration_source} have; it plans per second of speech, by style: "
                  + ", ".join(f"{s} {r:.3f}" for s, r in zip(styles, model.config.apex_rates)))
        return save_stage2(model, args, styles, stats, step, setup.lineage)

    # A resumed run must train the same thing (--audio-augment only when used, so that states
    # written before the option existed still resume).
    settings = [config.to_json(), styles, length, args.apex_weight, args.part_drop] + (
        [args.audio_augment] if args.audio_augment else [])
    spec = LoopSpec(
        name="train", model=stage, num_items=len(index), make_batch=make_batch, loss=loss, export=export,
        notes=data_notes(args, data),
        config_json=json.dumps(settings),
        validate=validate,
    )
    summary = run_loop(spec, args, dist)
    if dist.main:
        print(json.dumps({k: summary[k] for k in ("steps", "first", "last", "steps_per_s", "checkpoint")}))
    return 0


def speech_variants(args, dist, clips, stats: dict, pitch: bool = False) -> list | None:
    """``augmented_features`` for ``--audio-augment N`` copies (None when 0), with a progress line."""
    if not args.audio_augment:
        return None
    from .loop import Progress

    log(dist, f"train: {args.audio_augment} augmented copies of each clip's audio (room, channel, noise, level)")
    bar = Progress(len(clips), "augmenting audio", enabled=dist.main)
    return augmented_features(clips, stats, args.audio_augment, args.seed, lambda done, _: bar.update(done), pitch)


def speech_batch(windows, feats: list, style_ids: list, config, length: int, device,
                 variants: list | None = None, rng: np.random.Generator | None = None):
    """Training windows (clip, first frame) of ``length`` frames as whole codes: [(clip, first code)]
    and {"features": (B, length + L, F) normalised audio features, "style": (B,) style ids}.
    ``variants`` (from ``augmented_features``): per clip, more versions of its features, of which
    each window hears the clean one or one of these, drawn uniformly with ``rng``."""
    r, look = config.frames_per_code, config.lookahead
    starts = [(c, s // r) for c, s in windows]

    def heard(c: int) -> np.ndarray:
        if not variants:
            return feats[c]
        v = int(rng.integers(len(variants[c]) + 1))
        return feats[c] if v == 0 else variants[c][v - 1]

    return starts, {
        "features": torch.from_numpy(np.stack([window_features(heard(c), k * r, length + look)
                                               for c, k in starts])).to(device),
        "style": torch.as_tensor([style_ids[c] for c, _ in starts], dtype=torch.long, device=device),
    }


def window_features(features: np.ndarray, start: int, length: int) -> np.ndarray:
    """``length`` rows of (N, F) features from ``start``; beyond the clip's end zeros (the normalised
    mean, what generation hears there)."""
    f = features[start:start + length]
    if len(f) < length:
        f = np.concatenate([f, np.zeros((length - len(f), features.shape[1]), np.float32)])
    return f


def augmented_features(clips, stats: dict, copies: int, seed: int, progress=None,
                       pitch: bool = False) -> list[list[np.ndarray]]:
    """Per clip, ``copies`` normalised feature arrays (N, F) of its audio as other recordings would
    sound (``audio_augment.augment``: room, channel, noise, level), aligned with its clean features.
    Clip i's copy j draws from the seed (``seed``, i, j) alone. ``progress(done, total)`` after each
    clip; ``pitch``: with voicing and pitch (``normalized_features``). About 0.5 s per copy of a
    minute of audio on one core."""
    from ..inference.features import audio_features
    from .audio_augment import augment

    out = []
    for i, clip in enumerate(clips):
        wave, n = read_wave(clip.ref.audio_path), clip.num_frames
        versions = []
        for j in range(copies):
            x = audio_features(augment(wave, np.random.default_rng([seed, i, j])), pitch=pitch)
            versions.append(window_features(normalize(x, stats["audio_mean"], stats["audio_std"]), 0, n))
        out.append(versions)
        if progress is not None:
            progress(i + 1, len(clips))
    return out


def normalized_features(clip, stats: dict, pitch: bool = False) -> np.ndarray:
    """A clip's audio features (N, F) normalised by the training statistics, float32; with
    ``pitch`` its voicing and pitch after them (``features.pitch_features``, from its audio file
    unless it was loaded with its wave), as a ``planner_pitch`` planner hears them."""
    speech = normalize(clip.features, stats["audio_mean"], stats["audio_std"])
    if not pitch:
        return speech
    wave = clip.wave if clip.wave is not None else read_wave(clip.ref.audio_path)
    return np.concatenate([speech, window_features(pitch_features(wave), 0, len(speech))], axis=1)


@torch.no_grad()
def encode_clips(model, clips, stats: dict, device):
    """Per clip: normalised audio features (N, F), the codes {part: (N // r,)} of its whole codes
    (the causal encoder sees what it sees at inference) and the stroke plan (N,) of its apexes
    (``stroke_plan.apex_bumps``)."""
    r = model.config.frames_per_code
    feats, all_codes, plans = [], [], []
    for clip in clips:
        feats.append(normalized_features(clip, stats))
        plans.append(apex_bumps(clip.stroke_apex))
        whole = clip.num_frames // r * r
        c = {}
        for p in PARTS:
            x = torch.from_numpy((clip.parts[p][:whole] - stats[f"{p}_mean"]) / stats[f"{p}_std"]).float()
            c[p] = model.vq[p].encode_codes(x.unsqueeze(0).to(device))[0].cpu().numpy()
        all_codes.append(c)
    return feats, all_codes, plans


def head_probabilities(model, features: np.ndarray, style: int | None, device) -> list[np.ndarray]:
    """The stroke plan's probabilities over one clip as generation hears it (the stroke planner's
    where the model has one, else the generator's apex head): the causal
    encoder over the whole clip, then windows of the previous span's tail and a span at absolute
    positions (``pipeline``). features (N, ``config.input_width``) normalised (``normalized_features``
    with the model's ``planner_pitch``), style index -> one (span frames,) array
    per span, in order (together N frames or a few more). style None: no speaker (their mean)."""
    r = model.config.frames_per_code
    return [probability[(first - start) * r:] for start, first, _, probability in head_windows(model, features, style, device)]


@torch.no_grad()
def head_windows(model, features: np.ndarray, style: int | None, device) -> list[tuple]:
    """``head_probabilities`` window by window: (first code of the window, first code of its
    span, its end code, probabilities (window frames,)) per span, in order."""
    gen, config = model.generator, model.config
    r, look, span, prefix = config.frames_per_code, config.lookahead, config.span_codes, config.generation_prefix
    n = -(-len(features) // r)
    padded = np.concatenate([features, np.zeros((n * r - len(features) + look, features.shape[1]), np.float32)])
    speech, _ = gen.stream_speech(torch.from_numpy(padded)[None].to(device))
    windows = []
    for first in range(0, n, span):
        start, stop = max(first - prefix, 0), min(first + span, n)
        probability = gen.apex_probabilities(speech[:, start * r:stop * r + look], (style,))
        windows.append((start, first, stop, probability[0].float().cpu().numpy()))
    return windows


def calibration_clip(features: np.ndarray, clip, style: int) -> tuple:
    """What ``calibrate_apex_threshold`` reads of a clip: its normalised features (N,
    ``config.input_width``), its number of stroke apexes, its style index and its seconds of speech
    (``stroke_plan.spoken_frames``)."""
    spoken = float(spoken_frames(energy_db(clip.features))[0].sum()) / FPS
    return features, int(np.sum(clip.stroke_apex > 0.5)), style, spoken


def apex_rates(planned: list, clips, num_styles: int) -> tuple:
    """Planned stroke apexes per second of speech for each style: ``planned`` per clip, clips as
    ``calibrate_apex_threshold`` takes them. A style without clips, or without speech in them,
    gets the rate of all clips."""
    count, seconds = np.zeros(num_styles), np.zeros(num_styles)
    for apexes, (_, _, style, spoken) in zip(planned, clips):
        count[style] += apexes
        seconds[style] += spoken
    overall = count.sum() / max(seconds.sum(), 1.0 / FPS)
    rates = np.where(seconds > 0, count / np.maximum(seconds, 1.0 / FPS), overall)
    return tuple(float(max(r, 1e-3)) for r in rates)


@torch.no_grad()
def calibrate_apex_threshold(model, clips, device) -> float:
    """Set ``model.config.apex_threshold`` so that the head plans as many apexes over ``clips`` as
    they have, and ``apex_rates`` to the head's planned apexes per second of speech there, by
    style: the stroke rate ``StrokeRate`` keeps for a voice the head is less sure of. clips:
    ``calibration_clip`` per clip, each heard as generation hears it (``head_probabilities``).
    Returns the threshold."""
    gen = model.generator
    was_training = gen.training
    gen.eval()
    per_clip = [head_probabilities(model, features, style, device) for features, _, style, _ in clips]
    gen.train(was_training)
    try:
        threshold = calibrate_threshold([p for pieces in per_clip for p in pieces], [count for _, count, _, _ in clips])
    except ValueError as error:
        raise CommandError(f"{error}: train on data with stroke apexes (gestura synth writes them)") from None
    planned = [sum(int(plan_apexes(p, threshold).sum()) for p in pieces) for pieces in per_clip]
    rates = apex_rates(planned, clips, model.config.num_styles)
    model.config = gen.config = model.config.with_(apex_threshold=threshold, apex_rates=rates)
    return threshold


def _validator(stage: Stage2, val, stats, style_names, n_codes: int, device):
    """Loss and hidden-code accuracy on the val split: each clip's windows with every code after the
    prefix hidden (what generation faces), the body reading the corpus's stroke plan; fixed, so
    runs compare."""
    model = stage.model
    r, look, prefix = model.config.frames_per_code, model.config.lookahead, model.config.prefix_codes
    feats, codes, apexes = encode_clips(model, val.clips, stats, device)
    windows = []
    for i, clip in enumerate(val.clips):
        style = style_names.index(clip.ref.style) if clip.ref.style in style_names else 0
        for k in range(0, len(codes[i]["face"]) - n_codes + 1, n_codes):
            windows.append((window_features(feats[i], k * r, n_codes * r + look),
                            {p: codes[i][p][k:k + n_codes] for p in PARTS},
                            apexes[i][k * r:(k + n_codes) * r], style))
    hidden = torch.zeros(1, n_codes, len(PARTS), dtype=torch.bool, device=device)
    hidden[:, prefix:] = True

    def validate(m) -> dict:
        totals: dict = {}
        for f, c, a, style in windows:
            out = stage(torch.from_numpy(f)[None].to(device), torch.tensor([style], device=device),
                        {p: torch.from_numpy(v)[None].long().to(device) for p, v in c.items()}, hidden,
                        torch.from_numpy(a)[None].to(device))
            for k, v in out.items():
                totals.setdefault(f"val_{k}", []).append(float(v))
        return {k: float(np.mean(v)) for k, v in totals.items()}

    return validate
