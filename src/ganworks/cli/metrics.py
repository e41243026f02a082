"""``ganworks metrics`` (IS / FID / KID) and ``ganworks train-classifier`` (the small CNN of
classifier-based scores).

Flag defaults come from :data:`ganworks.metrics.defaults.DEFAULTS` (the same table as the Python
API).  Errors the user can fix are raised as :class:`ganworks.errors.GanworksError`; ``ganworks.cli.main``
prints them as one line and exits 2.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path

from ..errors import ConfigError
from ..metrics.defaults import DEFAULTS, default_for_dataset
from .common import DEVICES, add_data_root, add_device


def _add_common(p: argparse.ArgumentParser) -> None:
    add_data_root(p, help="dataset root (else $GANWORKS_DATA)")
    add_device(p, default=DEFAULTS["device"], choices=DEVICES)


def add_parser(subparsers) -> None:
    """Add the ``metrics`` and ``train-classifier`` parsers to ``subparsers``."""
    D = DEFAULTS
    p = subparsers.add_parser(
        "metrics",
        help="IS / FID / KID of images, an .npz, or a checkpoint's samples",
        description="Inception Score, FID and KID of generated images against a reference split.",
    )
    p.add_argument("input", help="image folder, .npz of uint8 images, or a run directory / checkpoint")
    p.add_argument(
        "--reference",
        default=D["reference"],
        help="'cifar10:test', 'mnist:test', 'imagefolder:/root:test', a stats .npz, or 'none' (IS only) "
        f"(default {D['reference']})",
    )
    p.add_argument(
        "--reference-count",
        type=int,
        default=D["reference_count"],
        help="use the first N reference images (default: all)",
    )
    p.add_argument(
        "--metrics",
        default=None,
        help=f"comma list of is,fid,kid (default {','.join(D['metrics'])}; with --reference none: is)",
    )
    p.add_argument(
        "--num-samples",
        type=int,
        default=D["num_samples"],
        help=f"images to generate from a checkpoint (default {D['num_samples']})",
    )
    p.add_argument("--extractor", default=D["extractor"], choices=["inception", "classifier"])
    p.add_argument("--classifier", default=None, help="trained classifier file: use it instead of Inception")
    p.add_argument(
        "--inception-weights",
        default=None,
        help=f"path to the torch-fidelity Inception weights (else ${D['weights_env']})",
    )
    p.add_argument("--is-splits", type=int, default=D["is_splits"])
    p.add_argument("--is-protocol", default=D["is_protocol"], choices=["openai", "torch-fidelity"])
    p.add_argument("--kid-subsets", type=int, default=D["kid_subsets"])
    p.add_argument("--kid-subset-size", type=int, default=D["kid_subset_size"])
    p.add_argument("--batch-size", type=int, default=D["batch_size"])
    p.add_argument("--num-workers", type=int, default=D["num_workers"])
    p.add_argument(
        "--cache-dir", default=None, help="reference-statistics cache (else $GANWORKS_CACHE, else ~/.cache/ganworks)"
    )
    p.add_argument("--no-cache", action="store_true", help="recompute reference statistics")
    p.add_argument(
        "--out",
        default=None,
        help="write the result JSON here (an existing file only if it is an earlier result, else with --force)",
    )
    p.add_argument("--force", action="store_true", help="let --out replace a file that is not a metrics result")
    p.add_argument("--quiet", action="store_true", help="no progress bars")
    _add_common(p)
    p.set_defaults(func=cmd_metrics)

    t = subparsers.add_parser(
        "train-classifier",
        help="train a small CNN for classifier-based IS/FID/KID",
        description="Train a small CNN classifier on a dataset's train split and save it.",
    )
    t.add_argument("dataset", help="mnist, cifar10, or an image-folder root with train/ and test/")
    t.add_argument("--out", default=None, help="classifier file (default classifier-<dataset>.pt)")
    t.add_argument("--result-json", default=None, help="also write the training summary JSON here")
    t.add_argument("--epochs", type=int, default=None, help="default: 8 for mnist, 20 otherwise")
    t.add_argument("--batch-size", type=int, default=D["clf_batch_size"])
    t.add_argument("--lr", type=float, default=None, help="peak one-cycle LR (0.05 mnist, 0.1 otherwise)")
    t.add_argument("--weight-decay", type=float, default=D["clf_weight_decay"])
    t.add_argument("--width", type=int, default=None, help="channel width multiplier of the CNN")
    t.add_argument("--max-train", type=int, default=None, help="use only the first N training images")
    t.add_argument("--max-test", type=int, default=None, help="use only the first N test images")
    t.add_argument("--seed", type=int, default=D["clf_seed"])
    t.add_argument("--threads", type=int, default=D["clf_threads"], help="torch.set_num_threads")
    t.add_argument("--quiet", action="store_true")
    _add_common(t)
    t.set_defaults(func=cmd_train_classifier)


def cmd_train_classifier(args) -> int:
    import torch

    from ..device import pick_device
    from ..metrics.classifier import save_classifier, train_classifier
    from ..metrics.datasets import dataset_label, load_split

    if args.threads:
        torch.set_num_threads(args.threads)
    name = args.dataset
    if os.path.isdir(name):
        name = "imagefolder:" + os.path.abspath(name)
    label = dataset_label(name)
    xtr, ytr, k = load_split(name, "train", args.data_root)
    xte, yte, _ = load_split(name, "test", args.data_root)
    if args.max_test:
        xte, yte = xte[: args.max_test], yte[: args.max_test]
    key = "mnist" if label == "mnist" else "default"
    model, info = train_classifier(
        xtr,
        ytr,
        xte,
        yte,
        k,
        label,
        arch_args={"width": args.width} if args.width else None,
        epochs=args.epochs or default_for_dataset("clf_epochs", key),
        batch_size=args.batch_size,
        lr=args.lr or default_for_dataset("clf_lr", key),
        weight_decay=args.weight_decay,
        seed=args.seed,
        device=pick_device(args.device),
        progress=not args.quiet,
        max_train=args.max_train,
        log=lambda m: print(m, file=sys.stderr),
    )
    out = Path(args.out or f"classifier-{label}.pt")
    save_classifier(model, info, out)
    summary = {k: v for k, v in info.items() if k not in ("arch_args",)}
    summary["classifier_file"] = str(out)
    if args.result_json:
        Path(args.result_json).parent.mkdir(parents=True, exist_ok=True)
        Path(args.result_json).write_text(json.dumps(summary, indent=2) + "\n")
    print(
        f"{label}: test accuracy {info['test_accuracy']:.4f} after {info['epochs']} epochs "
        f"({info['train_seconds']:.0f} s); saved {out}"
    )
    return 0


def cmd_metrics(args) -> int:
    from ..metrics.api import compute_metrics

    if args.metrics is None:  # `--reference none` means IS only (the help says so)
        none = str(args.reference).strip().lower() in ("", "none")
        args.metrics = "is" if none else ",".join(DEFAULTS["metrics"])
    metrics = tuple(m.strip().lower() for m in args.metrics.split(",") if m.strip())
    if args.out:
        _check_out(Path(args.out), args.force)
    extractor = "classifier" if args.classifier else args.extractor
    if extractor == "classifier" and not args.classifier:
        raise ConfigError("--extractor classifier needs --classifier PATH")
    for flag, value, low in (
        ("--num-samples", args.num_samples, 1),
        ("--is-splits", args.is_splits, 1),
        ("--kid-subsets", args.kid_subsets, 1),
        ("--kid-subset-size", args.kid_subset_size, 2),
        ("--batch-size", args.batch_size, 1),
        ("--num-workers", args.num_workers, 0),
    ):
        if value < low:
            raise ConfigError(f"{flag} must be at least {low}, got {value}")
    if args.num_samples > 10**7:
        raise ConfigError(f"--num-samples must be at most 10000000, got {args.num_samples}")
    result = compute_metrics(
        args.input,
        reference=args.reference,
        metrics=metrics,
        extractor=extractor,
        weights=args.inception_weights,
        classifier=args.classifier,
        num_samples=args.num_samples,
        reference_count=args.reference_count,
        is_splits=args.is_splits,
        is_protocol=args.is_protocol,
        kid_subsets=args.kid_subsets,
        kid_subset_size=args.kid_subset_size,
        batch_size=args.batch_size,
        num_workers=args.num_workers,
        device=args.device,
        data_root=args.data_root,
        cache_dir=args.cache_dir,
        use_cache=not args.no_cache,
        progress=not args.quiet,
    )
    print(result.table())
    if args.out:
        result.save_json(args.out)
        print(f"wrote {args.out}")
    return 0


def _check_out(out: Path, force: bool) -> None:
    """``--out`` may replace an earlier ``ganworks metrics`` result, any other file only with --force."""
    if out.is_dir():
        raise ConfigError(f"--out {out} is a folder: name a .json file to write")
    if not out.exists() or force:
        return
    try:
        earlier = json.loads(out.read_text())
        ours = isinstance(earlier, dict) and {"scores", "protocol"} <= set(earlier)
    except (OSError, ValueError):
        ours = False
    if not ours:
        raise ConfigError(
            f"--out {out} exists and is not a `ganworks metrics` result: pick another path, or add "
            f"--force to replace it"
        )
