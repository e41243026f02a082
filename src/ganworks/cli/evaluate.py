"""``ganworks eval`` (test error of a semi-supervised run's raw and averaged D) and ``ganworks sample``
(a grid of generated images)."""

from __future__ import annotations

import json
from pathlib import Path

from ..errors import CheckpointError, ConfigError
from .common import add_data_root_and_device

#: most images ``ganworks sample`` puts into one grid (``ganworks metrics`` scores more)
MAX_SAMPLES = 10_000


def add_parser(sub) -> None:
    p = sub.add_parser("eval", help="test error of the raw and the averaged discriminator")
    p.add_argument("run", metavar="RUN_DIR|CHECKPOINT")
    p.add_argument("--json", help="also write the result to this JSON file")
    add_data_root_and_device(p)
    p.set_defaults(func=cmd_eval)

    p = sub.add_parser("sample", help="write a grid of generated images")
    p.add_argument("run", metavar="RUN_DIR|CHECKPOINT")
    p.add_argument("--n", type=int, default=100, help="number of images (default 100)")
    p.add_argument("--out", required=True, help="PNG file to write")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--raw", action="store_true", help="use the raw G even if the run averaged G's weights")
    p.add_argument("--class", dest="cls", type=int, default=None, help="class of every image (conditional runs)")
    add_data_root_and_device(p)
    p.set_defaults(func=cmd_sample)


def cmd_eval(args) -> int:
    from ..checkpoints import load_discriminators
    from ..data.scaling import data_scale
    from ..device import pick_device
    from ..metrics.classification import count_errors
    from ..train.build import load_split

    device = pick_device(args.device or "auto")
    D, D_avg, cfg = load_discriminators(args.run, device)
    d = cfg["data"]
    if not d["labels"]:
        raise CheckpointError(
            f"{args.run} is not a semi-supervised run: its discriminator is no classifier (use `ganworks metrics`)"
        )
    test = load_split(d, "test", root=args.data_root)
    scale = data_scale(d)
    n = len(test)
    result = {"checkpoint": str(args.run), "dataset": d["name"], "split": "test", "n": n}
    for key, model in (("raw", D), ("averaged", D_avg)):
        if model is not None:
            e = count_errors(model, test.images, test.labels, scale, cfg["eval"]["batch_size"], device)
            result[f"test_errors_{key}"] = e
            result[f"test_error_{key}"] = e / n
            print(f"{key:>9} D: {e:5d} / {n} test errors ({100 * e / n:.2f}%)")
    if args.json:
        Path(args.json).write_text(json.dumps(result, indent=2) + "\n")
    return 0


def cmd_sample(args) -> int:
    import math

    import torch
    from torchvision.utils import save_image

    from ..checkpoints import load_generator
    from ..data.scaling import data_scale
    from ..device import pick_device
    from ..metrics.datasets import generate_images

    if not 1 <= args.n <= MAX_SAMPLES:
        raise ConfigError(f"--n must be between 1 and {MAX_SAMPLES} (one grid), got {args.n}")
    out = Path(args.out)
    if out.suffix.lower() != ".png":
        raise ConfigError(f"--out must be a .png file, got {out}")
    if out.is_dir():
        raise ConfigError(f"--out {out} is a folder: name a .png file to write")
    device = pick_device(args.device or "auto")
    G, cfg = load_generator(args.run, device, averaged=not args.raw)
    scale = data_scale(cfg["data"])
    torch.manual_seed(args.seed)
    if args.cls is not None:
        from ..metrics.conditional import generate_with_classes

        images = generate_with_classes(G, torch.full((args.n,), args.cls), scale, device, batch_size=500)
    else:
        images = generate_images(G, args.n, scale, device, batch_size=500)
    out.parent.mkdir(parents=True, exist_ok=True)
    save_image(images.float().div(255), out, nrow=max(1, int(math.sqrt(args.n))), padding=1)
    print(f"wrote {args.n} samples to {out}")
    return 0
