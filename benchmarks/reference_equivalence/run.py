"""Reference-equivalence driver: ganworks vs the authors' code, number for number.

Runs in ganworks' environment. For each section it computes ganworks' side, writes the weights,
inputs and every random draw to an .npz, runs one of our small scripts (``ref_*.py``) under the
reference environment's Python — which imports the authors' modules from the checkouts given on
the command line — reads the outputs back and compares (``compare.py``). Nothing of the reference
code is imported into this process.

    PYTHONPATH=src python benchmarks/reference_equivalence/run.py \\
        --improved-gan ~/.cache/ganworks/refsrc/improved-gan --lasagne ~/.cache/ganworks/refsrc/Lasagne \\
        --sngan-projection ~/.cache/ganworks/refsrc/sngan_projection \\
        --chainer-gan-lib ~/.cache/ganworks/refsrc/chainer-gan-lib \\
        --theano-python ~/.cache/ganworks/refenv/theano/bin/python \\
        --chainer-python ~/.cache/ganworks/refenv/chainer/bin/python \\
        --tf-python ~/.cache/ganworks/refenv/tf/bin/python  [--only mnist,sngan,imagenet-tf]

Writes benchmarks/results/reference_equivalence.{json,md} (sections not run keep their old rows).
See README.md in this folder for setting the reference environments up.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import tempfile
import time
from pathlib import Path

import torch

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
import compare as C  # noqa: E402
import sngan_dynamics  # noqa: E402
from harness import RESULTS  # noqa: E402,F401
from sec_averaging import section as averaging_section  # noqa: E402
from sec_bn_dcgan import section as bn_dcgan_section  # noqa: E402
from sec_cifar import cifar_section  # noqa: E402
from sec_igan_conv import cifar_md_section, eps_matched_float32, svhn_section  # noqa: E402
from sec_imagenet_tf import imagenet_tf_section  # noqa: E402
from sec_inception_score import section as inception_score_section  # noqa: E402
from sec_mnist import mnist_section  # noqa: E402
from sec_sn_baselines import section as sn_baselines_section  # noqa: E402
from sec_sngan import sngan_section  # noqa: E402
from sec_sngan_cond import sngan_cond_section  # noqa: E402
from sec_wgan_gp import section as wgan_gp_section  # noqa: E402


def measured(fn, **kw):
    """A section run twice, float32 and the same instance in float64, its rows re-judged by
    ``compare.measure_sections`` (float64 to 1e-10, float32 by the measured rounding noise)."""
    return lambda a, tmp: C.measure_sections(fn(a, tmp, "float32", **kw), fn(a, tmp, "float64", **kw))


def float64_only(fn, **kw):
    """A float64-only diagnostic run (e.g. with a documented difference matched), judged to 1e-10."""
    return lambda a, tmp: [C.measure_pair_64(c) if hasattr(c, "raw") else c for c in fn(a, tmp, "float64", **kw)]


#: every section runs float32 and float64 on the same instance unless its name says otherwise
#: (the *eps sections: float64 with the one documented difference given to ganworks, a diagnostic)
SECTIONS = {
    "mnist": measured(mnist_section),
    "mnist64eps": float64_only(mnist_section, match_g_eps=True),
    "cifar": measured(cifar_section),
    "cifar64eps": float64_only(cifar_section, match_eps=True),
    "sngan": measured(sngan_section),
    "sngan-cond": measured(sngan_cond_section),
    "imagenet-tf": measured(imagenet_tf_section),
    "svhn": measured(svhn_section),
    "svhn64eps": float64_only(svhn_section, match_eps=True),
    "cifar-md": measured(cifar_md_section),
    "cifar-md64eps": float64_only(cifar_md_section, match_eps=True),
    # float32 with the epsilon matched, judged by the noise of the same (matched) instance in float64
    "svhn32eps": lambda a, tmp: eps_matched_float32(svhn_section, a, tmp),
    "cifar-md32eps": lambda a, tmp: eps_matched_float32(cifar_md_section, a, tmp),
    "sngan-dynamics": sngan_dynamics.section,
    "inception-score": inception_score_section,
    "wgan-gp": wgan_gp_section,
    "sn-baselines": sn_baselines_section,
    "averaging": averaging_section,
    "bn-dcgan": bn_dcgan_section,
}


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    home = Path("~/.cache/ganworks").expanduser()
    ap.add_argument("--improved-gan", default=str(home / "refsrc/improved-gan"))
    ap.add_argument("--lasagne", default=str(home / "refsrc/Lasagne"))
    ap.add_argument("--sngan-projection", default=str(home / "refsrc/sngan_projection"))
    ap.add_argument("--chainer-gan-lib", default=str(home / "refsrc/chainer-gan-lib"))
    ap.add_argument("--theano-python", default=str(home / "refenv/theano/bin/python"))
    ap.add_argument("--chainer-python", default=str(home / "refenv/chainer/bin/python"))
    ap.add_argument("--tf-python", default=str(home / "refenv/tf/bin/python"))
    ap.add_argument(
        "--is-python",
        default=str(home / "refenv/chainer/bin/python"),
        help="any Python with NumPy and six for ref_inception_score.py (default: the Chainer environment's)",
    )
    ap.add_argument("--theano-compiledir", default=str(home / "refenv/theano-compiledir"))
    ap.add_argument("--only", default=",".join(SECTIONS), help=f"comma-separated sections: {', '.join(SECTIONS)}")
    ap.add_argument("--iterations", type=int, default=20, help="whole training iterations compared (MNIST)")
    ap.add_argument("--out", default=str(RESULTS / "reference_equivalence"), help="results path without suffix")
    ap.add_argument(
        "--merge",
        nargs="*",
        default=[],
        metavar="JSON",
        help="also merge the rows (by section) and meta of these results files, e.g. from "
        "sections run in parallel with other --out paths; --only '' merges without running",
    )
    a = ap.parse_args(argv)
    torch.set_num_threads(1)
    os.environ.setdefault("GANWORKS_DATA", "/work/shared/data")
    names = [s for s in a.only.split(",") if s]
    if not names and not a.merge:
        ap.error("nothing to do: give --only sections and/or --merge files")
    unknown = set(names) - set(SECTIONS)
    if unknown:
        ap.error(f"unknown sections {sorted(unknown)}; known: {', '.join(SECTIONS)}")
    checks = []
    t0 = time.time()
    with tempfile.TemporaryDirectory() as tmp:
        for name in names:
            checks += SECTIONS[name](a, Path(tmp))
    out = Path(a.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    old = json.loads(out.with_suffix(".json").read_text()) if out.with_suffix(".json").exists() else {}
    rows = C.merge_rows(old.get("checks", []), checks, {c.section for c in checks})
    merged_meta = {}
    for path in a.merge:
        other = json.loads(Path(path).read_text())
        secs = {r["section"] for r in other["checks"]}
        rows = [r for r in rows if r.get("section") not in secs] + other["checks"]
        merged_meta.update(other["meta"])
    commits = {}
    for k in ("improved_gan", "lasagne", "sngan_projection", "chainer_gan_lib"):
        f = Path(getattr(a, k)).parent / "COMMITS"
        if f.exists():
            commits = dict(line.split() for line in f.read_text().splitlines() if line.strip())
    meta = {
        **old.get("meta", {}),
        **merged_meta,
        "device": f"CPU ({platform.processor() or platform.machine()}, {os.cpu_count()} cores shared with other "
        f"jobs), float32 unless a row says [float64], 1 thread per side",
        "ganworks torch": torch.__version__,
        # checkouts of this run over those of earlier runs (a machine may hold only some of them)
        "reference checkouts": (
            {**(old.get("meta", {}).get("reference checkouts") or {}), **commits}
            if isinstance(old.get("meta", {}).get("reference checkouts"), dict) or commits
            else "see README.md"
        ),
        "targets": f"single step {C.RTOL_STEP:g} relative, {a.iterations}-iteration trajectory "
        f"{C.RTOL_TRAJECTORY:g} relative (issue 12)",
        "reading guide": "float32 rows are the issue's targets; [float64] rows repeat them in double precision, "
        "where rounding is ~1e-16 and any larger difference is a real one. A float32 training "
        "trajectory diverges from itself when every weight moves by one ulp (the 'ganworks vs "
        "ganworks' row), so the float32 20-iteration row cannot meet 1e-4; [float64, G eps "
        "matched] shows the 20 iterations equal to ~1e-13 once the one documented MNIST "
        "difference (1e-6 in G's output weight norm) is given to ganworks by the harness. "
        "The side-by-side whole training runs (reference MNIST script vs ganworks train, 30 epochs "
        "x 3 seeds) are in side_by_side_mnist.md. Not compared: the rest of the ImageNet TF code "
        "(whole G and D, the training loop).",
    }
    if names:
        run = ",".join(names)
        meta.update(
            {
                f"run {run}: finished": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
                f"run {run}: wall time": f"{time.time() - t0:.0f}s",
                f"run {run}: load average (1, 5, 15 min) at the end": [round(x, 2) for x in os.getloadavg()],
            }
        )
    meta = {k: v for k, v in meta.items() if not k.startswith(("last run", "load average at end", "wall time of last"))}
    C.write_results(rows, meta, out.with_suffix(".json"), out.with_suffix(".md"))
    for c in checks:
        print(f"{c.status:9s} max_rel {c.max_rel:9.3g}  {c.component}")
    print(f"wrote {out.with_suffix('.json')} and .md")
    return 1 if any(c.status == "FAIL" for c in checks) else 0


if __name__ == "__main__":
    raise SystemExit(main())
