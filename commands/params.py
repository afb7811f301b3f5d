"""``gestura params``: parameter counts of the model configs (from the architecture spec, no torch)."""
from __future__ import annotations


def add_arguments(parser) -> None:
    parser.add_argument("--config", default=None, help="only this config (default: all)")
    parser.add_argument("--checkpoint", default=None, help="count the model in this checkpoint instead")


def _rows(config):
    from ..inference.architecture import stage1_shapes, tensor_shapes
    from ..rigs.skeleton import PARTS

    def count(shapes):
        total = 0
        for shape in shapes.values():
            n = 1
            for s in shape:
                n *= s
            total += n
        return total

    stage1 = stage1_shapes(config)
    rows = [(f"vq.{part}", count({k: v for k, v in stage1.items() if k.startswith(f"vq.{part}.")})) for part in PARTS]
    rows.append(("gmp", count({k: v for k, v in stage1.items() if k.startswith("gmp.")})))
    gen = {k: v for k, v in tensor_shapes(config).items() if k.startswith("generator.")}
    groups = {
        "vq-mamba": (("generator.audio_in", "generator.audio_in"), ("generator.speech.", "generator.speech"),
                     ("generator.speech_window.", "generator.speech_window"), ("generator.global_", "generator.global"),
                     ("generator.local.", "generator.local"), ("generator.logits.", "generator.heads")),
        "dim-gestor": (("generator.audio_in", "generator.audio_in"), ("generator.speech.", "generator.speech"),
                       ("generator.blocks.", "generator.denoiser")),
    }[config.family]
    for prefix, label in groups:
        n = count({k: v for k, v in gen.items() if k.startswith(prefix)})
        if rows and rows[-1][0] == label:
            rows[-1] = (label, rows[-1][1] + n)
        else:
            rows.append((label, n))
    counted = sum(n for name, n in rows if name.startswith("generator"))
    rows.append(("generator.other", count(gen) - counted))
    return rows


def run(args) -> int:
    from ..errors import CommandError
    from ..inference.architecture import parameter_count
    from ..inference.config import CONFIGS, ConfigError, get_config

    if args.checkpoint:
        from ..inference.checkpoint import CheckpointError, load_checkpoint

        try:
            ckpt = load_checkpoint(args.checkpoint)
        except CheckpointError as error:
            raise CommandError(str(error)) from None
        configs = [(f"{ckpt.config.name} ({args.checkpoint}, stage {ckpt.stage})", ckpt.config)]
    elif args.config:
        try:
            configs = [(args.config, get_config(args.config))]
        except ConfigError as error:
            raise CommandError(str(error)) from None
    else:
        configs = list(CONFIGS.items())
    for label, config in configs:
        total = parameter_count(config)
        scans = ""
        if config.family == "dim-gestor":
            scans = f"; family dim-gestor, {config.denoiser_layers} {config.denoiser_block} denoiser blocks"
        if config.multi_granularity:
            scans = "; granularities " + ", ".join(f"{scan} {list(factors)}" for scan, factors in config.granularities.items())
        print(f"{label}: {total:,} parameters ({total / 1e6:.1f} M, {4 * total / 2**20:.1f} MiB as float32); "
              f"stage 1 {parameter_count(config, 'vq'):,}{scans}")
        for name, n in _rows(config):
            print(f"  {name:24s} {n:>13,}")
    return 0
