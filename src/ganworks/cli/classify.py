"""``ganworks classify RUN INPUT --out predictions.csv``: a run's classifier on new images (``ganworks.classify``)."""

from __future__ import annotations

import sys
from pathlib import Path

from ..errors import ConfigError
from .common import add_device


def add_parser(sub) -> None:
    p = sub.add_parser("classify", help="classify new images with a semi-supervised run's averaged D, into a CSV")
    p.add_argument("run", metavar="RUN_DIR|CHECKPOINT")
    p.add_argument("input", metavar="INPUT", help="a folder of images (any nesting) or an .npz with 'x' (and 'y')")
    p.add_argument("--out", required=True, help="CSV to write: file (or index), predicted class, probabilities")
    p.add_argument(
        "--top-k",
        type=int,
        default=None,
        metavar="K",
        help="write the K most probable classes and their probabilities instead of every class's",
    )
    p.add_argument("--raw", action="store_true", help="use the raw D even if the run averaged D's weights")
    p.add_argument("--force", action="store_true", help="overwrite --out even if it is not an earlier predictions CSV")
    add_device(p)
    p.set_defaults(func=cmd_classify)


def cmd_classify(args) -> int:
    from ..classify import load_classifier, looks_like_predictions, read_input, write_csv
    from ..device import pick_device

    out = Path(args.out)
    if out.is_dir():
        raise ConfigError(f"--out {out} is a folder: name a .csv file to write")
    if out.exists() and not args.force and not looks_like_predictions(out):
        raise ConfigError(
            f"--out {out} exists and is not a predictions CSV written by `ganworks classify`: pick "
            f"another file, or add --force to overwrite it"
        )
    if args.top_k is not None and args.top_k < 1:
        raise ConfigError(f"--top-k must be at least 1, got {args.top_k}")
    classifier, cfg, averaged = load_classifier(args.run, pick_device(args.device or "auto"), averaged=not args.raw)
    if not averaged and not args.raw:
        print(f"note: {args.run} kept no averaged D (train.ema_d = 0): classifying with its raw D", file=sys.stderr)
    inputs = read_input(args.input, classifier.class_names, classifier.image_shape[0])
    predictions = classifier.predict_inputs(inputs)
    write_csv(predictions, out, args.top_k)
    which = "averaged" if averaged else "raw"
    print(f"wrote {len(predictions.predicted)} predictions to {out} ({which} D of {args.run})")
    if inputs.labels is not None and (inputs.labels >= 0).any():
        n = int((inputs.labels >= 0).sum())
        e = predictions.errors(inputs.labels.numpy())
        print(f"{which:>9} D: {e:5d} / {n} errors ({100 * e / n:.2f}%) against the labels of {args.input}")
    return 0
