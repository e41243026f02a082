"""``ganworks interpolate``, ``ganworks class-grid`` and ``ganworks intra-fid``: the evaluation
commands of class-conditional runs (``ganworks.metrics.conditional``)."""

from __future__ import annotations

import json
import math
from pathlib import Path

from ..errors import ConfigError
from .common import DEVICES, add_data_root, add_device


def _common(p) -> None:
    add_device(p, default="auto", choices=DEVICES)
    add_data_root(p, help="dataset root (else $GANWORKS_DATA)")


def add_parser(sub) -> None:
    p = sub.add_parser(
        "interpolate", help="class-interpolation images of a conditional run (conditional-BN parameters)"
    )
    p.add_argument("run", metavar="RUN_DIR|CHECKPOINT")
    p.add_argument("--classes", type=int, nargs=2, required=True, metavar=("A", "B"))
    p.add_argument("--n-z", type=int, default=5, help="noise rows (default 5)")
    p.add_argument("--steps", type=int, default=8, help="images per row from A to B (default 8)")
    p.add_argument("--out", required=True, help="PNG file to write")
    p.add_argument("--seed", type=int, default=1234)
    p.add_argument("--raw", action="store_true", help="use the raw G even if the run averaged G's weights")
    _common(p)
    p.set_defaults(func=cmd_interpolate)

    p = sub.add_parser("class-grid", help="one row of samples per class of a conditional run")
    p.add_argument("run", metavar="RUN_DIR|CHECKPOINT")
    p.add_argument("--classes", type=int, nargs="+", default=None, help="classes (default: the first 10)")
    p.add_argument("--per-class", type=int, default=10)
    p.add_argument("--out", required=True, help="PNG file to write")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--raw", action="store_true")
    _common(p)
    p.set_defaults(func=cmd_class_grid)

    p = sub.add_parser(
        "intra-fid", help="intra-FID of a conditional run: per-class FID against per-class real images, averaged"
    )
    p.add_argument("run", metavar="RUN_DIR|CHECKPOINT")
    p.add_argument(
        "--reference", default="", help="class-folder training set (default: the run's data.path / imagenet folder)"
    )
    p.add_argument("--classes", type=int, nargs="+", default=None, help="classes to score (default: all)")
    p.add_argument("--per-class", type=int, default=5000, help="generated images per class (reference: 5000)")
    p.add_argument("--reference-per-class", type=int, default=0, help="real images per class (default: all)")
    p.add_argument("--inception-weights", default=None)
    p.add_argument("--classifier", default=None, help="a `ganworks train-classifier` file instead of Inception")
    p.add_argument("--batch-size", type=int, default=100)
    p.add_argument("--seed", type=int, default=1234)
    p.add_argument("--json", default=None, help="also write the result here")
    p.add_argument("--raw", action="store_true")
    _common(p)
    p.set_defaults(func=cmd_intra_fid)


def _load(args):
    import torch

    from ..checkpoints import load_generator
    from ..data.scaling import data_scale
    from ..device import pick_device

    device = pick_device(args.device or "auto")
    G, cfg = load_generator(args.run, device, averaged=not args.raw)
    torch.manual_seed(args.seed)
    return G, cfg, data_scale(cfg["data"]), device


def _save(images, out: str, nrow: int) -> None:
    from torchvision.utils import save_image

    path = Path(out)
    if path.suffix.lower() != ".png":
        raise ConfigError(f"--out must be a .png file, got {path}")
    path.parent.mkdir(parents=True, exist_ok=True)
    save_image(images.float().div(255), path, nrow=nrow, padding=1)


def cmd_interpolate(args) -> int:
    from ..metrics.conditional import class_interpolation

    G, _, scale, device = _load(args)
    a, b = args.classes
    _save(class_interpolation(G, a, b, args.n_z, args.steps, scale, device), args.out, args.steps)
    print(f"wrote {args.n_z} x {args.steps} interpolations from class {a} to class {b} to {args.out}")
    return 0


def cmd_class_grid(args) -> int:
    from ..metrics.conditional import class_grid

    G, _, scale, device = _load(args)
    classes = args.classes if args.classes is not None else list(range(min(10, getattr(G, "num_classes", 0) or 10)))
    _save(class_grid(G, classes, args.per_class, scale, device), args.out, args.per_class)
    print(f"wrote {len(classes)} rows of {args.per_class} samples to {args.out}")
    return 0


def cmd_intra_fid(args) -> int:
    import torch
    from torch.utils.data import Dataset

    from ..data.folder import ClassFolderDataset, imagenet_folder
    from ..metrics.api import make_extractor
    from ..metrics.conditional import class_statistics, intra_fid

    G, cfg, scale, device = _load(args)
    d = cfg["data"]
    folder = Path(args.reference) if args.reference else imagenet_folder(d, args.data_root)
    real = ClassFolderDataset(
        folder, G.image_shape[-1], d.get("class_order", ""), d.get("classes", []), args.reference_per_class
    )
    classes = args.classes if args.classes is not None else list(range(real.num_classes))

    class _Images(Dataset):
        def __init__(self, idx):
            self.idx = idx

        def __len__(self):
            return len(self.idx)

        def __getitem__(self, i):
            return real[self.idx[i]][0]

    by_class = {c: _Images(torch.nonzero(real.labels == c).flatten().tolist()) for c in classes}
    empty = [c for c, ds in by_class.items() if len(ds) < 2]
    if empty:
        raise ConfigError(f"classes {empty[:5]} have fewer than 2 real images under {folder}")
    extractor = make_extractor(weights=args.inception_weights, classifier=args.classifier, device=device)
    reference = class_statistics(extractor, by_class, args.batch_size)
    result = intra_fid(G, extractor, reference, args.per_class, scale, device, args.batch_size)
    result = {"checkpoint": str(args.run), "reference": str(folder), "per_class": args.per_class, **result}
    print(json.dumps({"intra_FID": result["intra_FID"], "classes": len(classes)}))
    if args.json:
        Path(args.json).write_text(json.dumps(result, indent=2) + "\n")
    if not math.isfinite(result["intra_FID"]):
        return 1
    return 0
