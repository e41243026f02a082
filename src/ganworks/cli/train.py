"""``ganworks train``: flags into a :class:`ganworks.train.run.RunRequest`, run by ``ganworks.train.run``."""

from __future__ import annotations

from .common import add_data_root_and_device


def add_parser(sub) -> None:
    p = sub.add_parser("train", help="train a preset (or resume a run)")
    p.add_argument("preset", nargs="?", help="preset name, e.g. improved-gan/mnist-100 (see `ganworks presets`)")
    p.add_argument("--set", action="append", default=[], metavar="KEY=VALUE", help="override a config key (repeatable)")
    p.add_argument("--epochs", type=float, help="train for this many epochs in total")
    p.add_argument(
        "--iterations", type=int, help="train for this many iterations in total (generator updates for SN-GAN)"
    )
    p.add_argument("--seed", type=int, help="model and data-order seed (train.seed)")
    p.add_argument("--out", help="run directory (default: runs/<preset>-seed<seed>-<time>)")
    p.add_argument(
        "--resume",
        metavar="RUN_DIR",
        help="continue the run in RUN_DIR from its last checkpoint (or from RUN_DIR/checkpoints/best.pt)",
    )
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    p.add_argument(
        "--nproc",
        type=int,
        default=1,
        help="data-parallel processes (launches torchrun; data.batch_size is the global batch)",
    )
    p.add_argument(
        "--compile", choices=["auto", "true", "optimizer", "false"], help="train.compile, also when resuming"
    )
    p.add_argument("--threads", type=int, help="CPU threads (torch.set_num_threads)")
    p.add_argument("--max-minutes", type=float, help="train.max_minutes (wall-clock budget), also when resuming")
    add_data_root_and_device(p)
    p.set_defaults(func=cmd_train)


def request(args):
    """The ``RunRequest`` of ``ganworks train``'s flags."""
    from ..train.run import RunRequest

    return RunRequest(
        preset=args.preset,
        out=args.out,
        resume=args.resume,
        overrides=list(args.set),
        seed=args.seed,
        epochs=args.epochs,
        iterations=args.iterations,
        max_minutes=args.max_minutes,
        compile=args.compile,
        threads=args.threads,
        device=args.device,
        data_root=args.data_root,
        nproc=args.nproc,
        progress=not args.no_progress,
    )


def cmd_train(args) -> int:
    from ..train.run import run

    return run(request(args))
