"""``gestura synth``: write the synthetic speech + gesture corpus (BEAT2 layout) the bundled model
trains on. Cheap to import; the corpus is made by ``training.synth.corpus``."""
from __future__ import annotations


def add_arguments(parser) -> None:
    parser.add_argument("--out", required=True, help="folder to write the corpus into (created; must be empty)")
    parser.add_argument("--hours", type=float, required=True, help="total length of speech to make, in hours")
    parser.add_argument("--seed", type=int, default=0, help="random seed (same seed, same corpus)")
    parser.add_argument("--jobs", type=int, default=2, help="parallel worker processes (default 2)")
    parser.add_argument("--overwrite", action="store_true", help="replace an existing corpus in --out")


def run(args) -> int:
    from ..training.synth.corpus import write_corpus

    return write_corpus(args.out, args.hours, seed=args.seed, jobs=args.jobs, overwrite=args.overwrite)
