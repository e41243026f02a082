"""CPU cost of one Improved-GAN training iteration on CIFAR-10, and of minibatch discrimination.

Measures, on synthetic 32×32 data (timing only; no dataset needed):

1. milliseconds per iteration of the CIFAR-10 feature-matching model (papers.md §A.1, §A.3):
   one D step (labeled, unlabeled and generated batches of ``--batch`` each through D, the
   semi-supervised loss, Adam) plus one G step (G forward, D features of a real and the generated
   batch, L1 feature matching, Adam). Adam lr 3e-4, β = (0.5, 0.999); both nets data-initialised.
2. the forward time of a MinibatchDiscrimination(192, 100 kernels × 5) layer on a batch of
   ``--batch`` pool features, relative to the forward time of the whole minibatch-discrimination
   discriminator on ``--batch`` images (target: at most 10%).

Writes ``benchmarks/results/improved_gan_step_<device>.json`` and ``.md``. Run from the repo root:
``OMP_NUM_THREADS=1 PYTHONPATH=src python benchmarks/improved_gan_step.py --threads 1``.
"""

from __future__ import annotations

import argparse
import json
import platform
import statistics
import time
from pathlib import Path

import torch

from ganworks.losses import feature_matching_loss, semi_supervised_d_loss
from ganworks.models.improved_gan_cifar import cifar_discriminator, cifar_generator
from ganworks.nn.minibatch_discrimination import MinibatchDiscrimination, data_dependent_init

RESULTS = Path(__file__).resolve().parent / "results"


def _cpu_name() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def _timed(fn, repeats: int, warmup: int) -> list[float]:
    for _ in range(warmup):
        fn()
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        times.append((time.perf_counter() - t0) * 1e3)
    return times


def bench_iteration(batch: int, iters: int, warmup: int) -> dict:
    torch.manual_seed(0)
    D = cifar_discriminator(variant="fm")
    G = cifar_generator(norm="batch")
    x_lab = torch.rand(batch, 3, 32, 32) * 2 - 1
    y_lab = torch.randint(0, 10, (batch,))
    x_unl = torch.rand(batch, 3, 32, 32) * 2 - 1
    x_unl2 = torch.rand(batch, 3, 32, 32) * 2 - 1
    data_dependent_init(D, torch.rand(min(batch, 500), 3, 32, 32) * 2 - 1)
    data_dependent_init(G, G.sample_z(batch))
    d_params = [p for p in D.parameters() if p.requires_grad]
    g_params = [p for p in G.parameters() if p.requires_grad]
    opt_d = torch.optim.Adam(d_params, lr=3e-4, betas=(0.5, 0.999))
    opt_g = torch.optim.Adam(g_params, lr=3e-4, betas=(0.5, 0.999))

    def step():
        # D step
        with torch.no_grad():
            fake = G(G.sample_z(batch))
        loss_d, _, _ = semi_supervised_d_loss(D(x_lab), y_lab, D(x_unl), D(fake))
        opt_d.zero_grad(set_to_none=True)
        loss_d.backward()
        opt_d.step()
        # G step (feature matching, L1 as the CIFAR code)
        for p in d_params:
            p.requires_grad_(False)
        with torch.no_grad():
            _, f_real = D(x_unl2, with_features=True)
        _, f_fake = D(G(G.sample_z(batch)), with_features=True)
        loss_g = feature_matching_loss(f_real, f_fake, distance="l1")
        opt_g.zero_grad(set_to_none=True)
        loss_g.backward()
        opt_g.step()
        for p in d_params:
            p.requires_grad_(True)

    times = _timed(step, iters, warmup)
    return {"ms_per_iteration_median": statistics.median(times), "ms_per_iteration_min": min(times),
            "ms_per_iteration_all": [round(t, 1) for t in times]}


def bench_minibatch(batch: int, repeats: int, warmup: int) -> dict:
    torch.manual_seed(0)
    D = cifar_discriminator(variant="md").train()
    x = torch.rand(batch, 3, 32, 32) * 2 - 1
    data_dependent_init(D, x)
    feats = torch.randn(batch, D.feature_dim)
    mbd: MinibatchDiscrimination = D.minibatch
    out = {}
    with torch.no_grad():
        d_fwd = _timed(lambda: D(x), repeats, warmup)
        mb_fwd = _timed(lambda: mbd(feats), repeats * 5, warmup)
    out["d_md_forward_ms_median"] = statistics.median(d_fwd)
    out["minibatch_forward_ms_median"] = statistics.median(mb_fwd)
    out["minibatch_over_d_forward"] = out["minibatch_forward_ms_median"] / out["d_md_forward_ms_median"]
    # forward + backward of the layer alone, for reference
    feats_g = feats.clone().requires_grad_(True)
    mb_fb = _timed(lambda: mbd(feats_g).sum().backward(), repeats * 5, warmup)
    out["minibatch_forward_backward_ms_median"] = statistics.median(mb_fb)
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--batch", type=int, default=100)
    ap.add_argument("--iters", type=int, default=3, help="timed training iterations")
    ap.add_argument("--warmup", type=int, default=1)
    ap.add_argument("--repeats", type=int, default=5, help="timed D forwards (the layer alone: 5×)")
    ap.add_argument("--threads", type=int, default=1)
    args = ap.parse_args()
    torch.set_num_threads(args.threads)

    it = bench_iteration(args.batch, args.iters, args.warmup)
    mb = bench_minibatch(args.batch, args.repeats, args.warmup)
    result = {
        "benchmark": "improved_gan_step",
        "device": "cpu",
        "cpu": _cpu_name(),
        "torch": torch.__version__,
        "python": platform.python_version(),
        "threads": torch.get_num_threads(),
        "settings": {
            "batch": args.batch, "iters": args.iters, "warmup": args.warmup, "repeats": args.repeats,
            "model": "improved-gan-cifar-d (variant=fm) + improved-gan-cifar-g (norm=batch), full width",
            "iteration": "1 D step (labeled+unlabeled+fake batches, semi-supervised loss) + 1 G step "
                         "(L1 feature matching on the pool features); Adam lr 3e-4 betas (0.5, 0.999)",
            "minibatch": "MinibatchDiscrimination(192, 100, 5) forward on a batch of pool features vs "
                         "improved-gan-cifar-d (variant=md) forward on the same number of images, "
                         "train mode, no grad",
            "data": "synthetic uniform [-1, 1] images (timing only)",
        },
        **{k: (round(v, 4) if isinstance(v, float) else v) for k, v in {**it, **mb}.items()},
    }
    RESULTS.mkdir(parents=True, exist_ok=True)
    stem = RESULTS / "improved_gan_step_cpu"
    stem.with_suffix(".json").write_text(json.dumps(result, indent=2) + "\n")
    md = [
        "# Improved-GAN CIFAR-10 step cost (CPU)",
        "",
        f"{result['cpu']}, {result['threads']} thread(s), torch {result['torch']}, batch {args.batch}; "
        "synthetic data. Produced by `benchmarks/improved_gan_step.py`.",
        "",
        "| measurement | value |",
        "|---|---|",
        f"| FM iteration (1 D step + 1 G step), median of {args.iters} | {it['ms_per_iteration_median']:.0f} ms |",
        f"| FM iteration, min | {it['ms_per_iteration_min']:.0f} ms |",
        f"| MD discriminator forward, {args.batch} images | {mb['d_md_forward_ms_median']:.1f} ms |",
        f"| minibatch layer forward, {args.batch} samples | {mb['minibatch_forward_ms_median']:.2f} ms |",
        f"| minibatch layer / D forward (target ≤ 10%) | {100 * mb['minibatch_over_d_forward']:.2f}% |",
        f"| minibatch layer forward + backward | {mb['minibatch_forward_backward_ms_median']:.2f} ms |",
        "",
    ]
    stem.with_suffix(".md").write_text("\n".join(md))
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
