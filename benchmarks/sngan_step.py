"""CPU cost of one SN-GAN generator iteration, with and without spectral normalization.

One generator iteration is what the reference updaters do per G update (docs/papers.md §B.2): one G
step first (G forward on fresh z, D forward, G loss, Adam), then ``n_dis`` D steps, each with a
fresh real batch and a fresh fake batch (fakes under ``no_grad``), D loss, Adam. Batch 64 for
every D batch and for the G step, z ∈ R^128 ~ N(0, I); synthetic images in [−1, 1] (timing only).

Architectures at CIFAR size (32×32), full width, each with its reference setting:

* ``cnn``: the standard CNN (``sngan-cnn-g`` / ``sngan-cnn-d``, paper layout), non-saturating loss
  (eq. 15), Adam(2e-4, β = (0.5, 0.999)), n_dis = 1 (setting C).
* ``resnet``: the ResNet (``sngan-resnet-g`` / ``sngan-resnet-d``), hinge loss (eq. 16-17),
  Adam(2e-4, β = (0, 0.9)), n_dis = 5 (App. B.2).

Each architecture is timed with D ``norm="spectral"`` and ``norm="none"``; iterations of the
variants are interleaved (one of each per round, after a warm-up round) so that load from other
processes on a shared CPU hits them alike, and the median per variant is reported. The SN overhead
is given three ways: end to end, (median_sn − median_none)/median_none, and paired, the median over
rounds of sn/none − 1, both no more precise on a shared CPU than the spread of the timings; and isolated, the measured cost of the spectral-norm
parametrizations alone (power step, σ, W/σ forward and backward for every D layer, 2·n_dis + 1
times per iteration, once per D forward) divided by the no-SN iteration time.

Peer: torch-mimicry's SNGAN-32 G and D (``SNGANGenerator32``, ``SNGANDiscriminator32``, its own
spectral-norm layers) timed by the same step function, hinge, n_dis 5, interleaved with ours.
``import torch_mimicry`` needs tensorflow and scikit-image at import time (its package
``__init__`` imports its metrics and training utilities); if that fails, the error is recorded and
the network modules alone are loaded from the installed package without running that
``__init__`` (``torch_mimicry.nets`` needs only torch). Install it apart from the project's
environment, e.g. ``pip install --no-deps --target /tmp/mimicry torch-mimicry`` and pass
``--peer-path /tmp/mimicry``.

Writes ``benchmarks/results/sngan_step_cpu.json`` and ``.md``. Run from the repo root:
``OMP_NUM_THREADS=1 PYTHONPATH=src python benchmarks/sngan_step.py --threads 1``.
Targets (benchmarks, not tests): SN ≤ 5% of the step time of the same model without it; our
ResNet step no slower than the peer's.
"""

from __future__ import annotations

import argparse
import datetime
import importlib
import importlib.util
import json
import platform
import statistics
import sys
import time
import types
from pathlib import Path

import torch

from ganworks.losses import ADVERSARIAL_LOSSES
from ganworks.models.sngan_cnn import cnn_discriminator, cnn_generator
from ganworks.models.sngan_resnet import resnet_discriminator, resnet_generator
from ganworks.nn.spectral_norm import is_spectral_normed

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import device_name, timed_runs  # noqa: E402

RESULTS = Path(__file__).resolve().parent / "results"

ARCHS = {
    "cnn": dict(
        g=cnn_generator, d=cnn_discriminator, loss="nonsaturating", lr=2e-4, betas=(0.5, 0.999), n_dis=1, rounds=10
    ),
    "resnet": dict(
        g=resnet_generator, d=resnet_discriminator, loss="hinge", lr=2e-4, betas=(0.0, 0.9), n_dis=5, rounds=3
    ),
}


def _z(G, n: int) -> torch.Tensor:
    return G.sample_z(n) if hasattr(G, "sample_z") else torch.randn(n, 128)


def make_iteration(G, D, loss: str, lr: float, betas, n_dis: int, batch: int, image_size: int = 32):
    """One generator iteration in the reference order; returns a callable (``n_dis`` may be
    overridden per call, e.g. a short warm-up)."""
    d_loss_fn, g_loss_fn = ADVERSARIAL_LOSSES[loss]
    betas = tuple(float(b) for b in betas)
    opt_g = torch.optim.Adam([p for p in G.parameters() if p.requires_grad], lr=lr, betas=betas)
    opt_d = torch.optim.Adam([p for p in D.parameters() if p.requires_grad], lr=lr, betas=betas)
    G.train(), D.train()

    def iteration(n_dis: int = n_dis) -> None:
        # G step first
        loss_g = g_loss_fn(D(G(_z(G, batch))))
        opt_g.zero_grad(set_to_none=True)
        loss_g.backward()
        opt_g.step()
        # then n_dis D steps, fresh real and fake batches each
        for _ in range(n_dis):
            real = torch.rand(batch, 3, image_size, image_size) * 2 - 1
            with torch.no_grad():
                fake = G(_z(G, batch))
            loss_d = d_loss_fn(D(real), D(fake))
            opt_d.zero_grad(set_to_none=True)
            loss_d.backward()
            opt_d.step()

    return iteration


def isolated_sn_ms(D, repeats: int) -> float:
    """Milliseconds for one forward + backward of every SN parametrization of D (power step,
    σ = uᵀWv, W/σ and its gradient), i.e. the SN work of one D forward/backward."""
    layers = [m for m in D.modules() if is_spectral_normed(m)]
    D.train()
    grads = [torch.randn_like(m.parametrizations.weight.original) for m in layers]

    def once() -> None:
        total = sum((m.weight * g).sum() for m, g in zip(layers, grads))
        total.backward()

    times = timed_runs(once, repeats)
    for m in layers:
        m.parametrizations.weight.original.grad = None
    # the weight-gradient accumulation into .grad also happens without SN; subtract it
    raws = [m.parametrizations.weight.original for m in layers]

    def plain() -> None:
        sum((w * g).sum() for w, g in zip(raws, grads)).backward()

    base = timed_runs(plain, repeats)
    for w in raws:
        w.grad = None
    return max(0.0, statistics.median(times) - statistics.median(base))


def load_peer(peer_path: str | None) -> tuple[dict, tuple | None]:
    """Import torch-mimicry's SNGAN-32 nets; returns (info, (G, D) classes or None)."""
    if peer_path:
        sys.path.insert(0, peer_path)
    info: dict = {"name": "torch-mimicry"}
    spec = importlib.util.find_spec("torch_mimicry")
    if spec is None:
        info["status"] = "not installed"
        info["note"] = "pip install --no-deps --target DIR torch-mimicry, then --peer-path DIR"
        return info, None
    try:
        from importlib.metadata import version

        info["version"] = version("torch-mimicry")
    except Exception:  # noqa: BLE001 - a --target install may lack metadata on the path
        dist = list(Path(spec.submodule_search_locations[0]).parent.glob("torch_mimicry-*.dist-info"))
        info["version"] = dist[0].name.split("-")[1] if dist else "unknown"
    try:
        importlib.import_module("torch_mimicry")
        info["full_import"] = "ok"
    except Exception as e:  # noqa: BLE001 - recorded, then the nets are loaded alone
        info["full_import"] = f"failed: {type(e).__name__}: {e}"
        for name in [n for n in sys.modules if n == "torch_mimicry" or n.startswith("torch_mimicry.")]:
            del sys.modules[name]
        stub = types.ModuleType("torch_mimicry")  # a bare package: skip its __init__
        stub.__path__ = list(spec.submodule_search_locations)
        sys.modules["torch_mimicry"] = stub
    try:
        sngan_32 = importlib.import_module("torch_mimicry.nets.sngan.sngan_32")
    except Exception as e:  # noqa: BLE001
        info["status"] = f"nets import failed: {type(e).__name__}: {e}"
        return info, None
    info["status"] = (
        "ok" if info["full_import"] == "ok" else "ok (torch_mimicry.nets loaded without the package __init__)"
    )
    return info, (sngan_32.SNGANGenerator32, sngan_32.SNGANDiscriminator32)


def run(args) -> dict:
    torch.set_num_threads(args.threads)
    peer_info, peer = load_peer(args.peer_path) if not args.no_peer else ({"status": "skipped"}, None)
    results = []
    for arch in args.archs:
        cfg = ARCHS[arch]
        n_dis = cfg["n_dis"] if args.n_dis is None else args.n_dis
        variants = {}
        torch.manual_seed(0)
        for norm in ("spectral", "none"):
            G, D = cfg["g"](), cfg["d"](norm=norm)
            variants[norm] = dict(
                models=(G, D), fn=make_iteration(G, D, cfg["loss"], cfg["lr"], cfg["betas"], n_dis, args.batch)
            )
        if arch == "resnet" and peer is not None:
            G, D = peer[0](), peer[1]()
            variants["peer"] = dict(
                models=(G, D), fn=make_iteration(G, D, cfg["loss"], cfg["lr"], cfg["betas"], n_dis, args.batch)
            )
        names = list(variants)
        times = {n: [] for n in names}
        rounds = cfg["rounds"] if args.iters is None else args.iters
        for _ in range(args.warmup):  # warm-up: one G step + one D step per variant
            for n in names:
                variants[n]["fn"](n_dis=1)
        for r in range(rounds):
            order = names[r % len(names) :] + names[: r % len(names)]  # rotate to spread drift evenly
            for n in order:
                t0 = time.perf_counter()
                variants[n]["fn"]()
                times[n].append((time.perf_counter() - t0) * 1e3)
            print(
                f"{arch} round {r + 1}/{rounds}: " + ", ".join(f"{n} {times[n][-1]:.0f} ms" for n in names), flush=True
            )
        med = {n: statistics.median(times[n]) for n in names}

        def paired(a: str, b: str) -> float:  # median over rounds of a/b: robust to load drifting between rounds
            return statistics.median(x / y for x, y in zip(times[a], times[b]))

        sn_passes = 2 * n_dis + 1
        iso = isolated_sn_ms(variants["spectral"]["models"][1], args.isolated_repeats)
        entry = {
            "arch": arch,
            "image_size": 32,
            "loss": cfg["loss"],
            "adam": {"lr": cfg["lr"], "betas": list(cfg["betas"])},
            "n_dis": n_dis,
            "timed_rounds": rounds,
            "d_params": sum(p.numel() for p in variants["none"]["models"][1].parameters()),
            "g_params": sum(p.numel() for p in variants["none"]["models"][0].parameters()),
            "ms_per_iter": {("sn" if n == "spectral" else n): round(med[n], 1) for n in names},
            "ms_all": {("sn" if n == "spectral" else n): [round(t, 1) for t in times[n]] for n in names},
            "sn_overhead_pct": round(100 * (med["spectral"] - med["none"]) / med["none"], 2),
            "sn_overhead_pct_end_to_end": round(100 * (med["spectral"] - med["none"]) / med["none"], 2),
            "sn_overhead_pct_paired": round(100 * (paired("spectral", "none") - 1), 2),
            "sn_isolated_ms_per_d_pass": round(iso, 3),
            "sn_d_passes_per_iter": sn_passes,
            "sn_overhead_pct_isolated": round(100 * iso * sn_passes / med["none"], 2),
        }
        if "peer" in med:
            entry["ratio_ours_sn_over_peer"] = round(med["spectral"] / med["peer"], 3)
            entry["ratio_ours_sn_over_peer_paired"] = round(paired("spectral", "peer"), 3)
        results.append(entry)
    ratios = [r["ratio_ours_sn_over_peer"] for r in results if "ratio_ours_sn_over_peer" in r]
    targets_met = {"sn_overhead_le_5pct": all(r["sn_overhead_pct"] <= 5.0 for r in results)}
    if ratios:
        targets_met["ours_no_slower_than_peer"] = all(x <= 1.0 for x in ratios)
    return {
        "benchmark": "sngan_step",
        "device": "cpu",
        "device_name": device_name(torch.device("cpu")),
        "torch": torch.__version__,
        "python": platform.python_version(),
        "threads": torch.get_num_threads(),
        "date": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        "settings": {
            "batch_size": args.batch,
            "g_step_batch": args.batch,
            "z_dim": 128,
            "z_distribution": "normal",
            "image_size": 32,
            "width": 1.0,
            "warmup_rounds": args.warmup,
            "warmup": "one G step + one D step per variant per warm-up round",
            "order": "G step, then n_dis D steps with fresh real (uniform noise) and fake batches",
            "statistic": "median over interleaved rounds (one iteration of each variant per round)",
        },
        "results": results,
        "peer": peer_info,
        "targets": {"sn_overhead_pct_max": 5.0, "ours_over_peer_ratio_max": 1.0},
        "targets_met": targets_met,
        "notes": [
            "sn_overhead_pct is the end-to-end figure; sn_overhead_pct_isolated times the SN "
            "parametrizations alone and is the steadier estimate on a shared CPU.",
            "The peer is timed with this file's step function (same losses, Adam, batch, order), so the "
            "ratio compares the model implementations, not the training loops.",
        ],
    }


def markdown(report: dict) -> str:
    lines = [
        "# SN-GAN generator-iteration cost (CPU)",
        "",
        f"{report['device_name']}, torch {report['torch']}, {report['threads']} thread(s), {report['date']}.",
        f"Batch {report['settings']['batch_size']}, z 128, 32×32, full width; "
        "Interleaved rounds (one iteration of each variant per round) after a warm-up; median per variant.",
        "",
        "| arch | loss | n_dis | rounds | ms/iter SN | ms/iter no SN | SN overhead end-to-end | paired | isolated | peer ms/iter | ours/peer | paired |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for r in report["results"]:
        ms = r["ms_per_iter"]
        lines.append(
            f"| {r['arch']} | {r['loss']} | {r['n_dis']} | {r['timed_rounds']} | {ms['sn']:.0f} | {ms['none']:.0f} | "
            f"{r['sn_overhead_pct_end_to_end']:+.1f}% | {r['sn_overhead_pct_paired']:+.1f}% | {r['sn_overhead_pct_isolated']:.2f}% | "
            f"{ms.get('peer', float('nan')):.0f} | {r.get('ratio_ours_sn_over_peer', float('nan')):.2f} | "
            f"{r.get('ratio_ours_sn_over_peer_paired', float('nan')):.2f} |"
        )
    peer = report["peer"]
    lines += [
        "",
        f"Peer: {peer.get('name', 'torch-mimicry')} {peer.get('version', '')}: {peer.get('status')}.",
    ]
    if "full_import" in peer:
        lines.append(f"`import torch_mimicry`: {peer['full_import']}.")
    lines += [
        "",
        "End-to-end overhead = (SN − no SN)/no SN on medians; paired = median over rounds of SN/no-SN − 1 (robust to "
        "load that drifts between rounds). On a shared CPU both are only as precise as the spread of `ms_all` in the "
        "JSON. Isolated overhead = measured cost of the SN parametrizations (power step, σ, W/σ, "
        "forward + backward) × (2·n_dis + 1) D passes / no-SN iteration time. Targets: SN ≤ 5%; ours/peer ≤ 1.",
        "",
    ]
    return "\n".join(lines)


def main(argv=None) -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--archs", nargs="+", default=["cnn", "resnet"], choices=list(ARCHS))
    p.add_argument("--batch", type=int, default=64)
    p.add_argument("--n-dis", type=int, default=None, help="override the architectures' reference n_dis")
    p.add_argument(
        "--iters",
        type=int,
        default=None,
        help="timed rounds, one iteration of each variant per round (default: cnn 10, resnet 3)",
    )
    p.add_argument("--warmup", type=int, default=1)
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--isolated-repeats", type=int, default=10)
    p.add_argument("--peer-path", default=None, help="directory holding an installed torch_mimicry package")
    p.add_argument("--no-peer", action="store_true")
    p.add_argument("--out", default=str(RESULTS / "sngan_step_cpu"), help="output path without extension")
    args = p.parse_args(argv)
    report = run(args)
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.with_suffix(".json").write_text(json.dumps(report, indent=2) + "\n")
    out.with_suffix(".md").write_text(markdown(report))
    print(markdown(report))


if __name__ == "__main__":
    main()
