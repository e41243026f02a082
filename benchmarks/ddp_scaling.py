"""Data-parallel scaling on CPU: images/s of the SN-GAN CIFAR-10 projection model (sngan/cifar10-resnet-projection)
at a small width, trained by 1 and by 2 gloo processes (one thread each) with the same global batch.

Images/s counts the real images D sees (global batch × n_dis per iteration). Each process times the
loop's own ``train_iteration`` (with the DDP phase wrapping of ``ganworks.train.distributed``) after
warm-up; the figure is rank 0's. The load average is recorded before and after: on a shared
machine the 2-process figure is only as good as the second core is free.

    PYTHONPATH=src python benchmarks/ddp_scaling.py [--width 0.25] [--iterations 5]
"""

from __future__ import annotations

import argparse
import json
import multiprocessing as mp
import os
import socket
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

PRESET = "sngan/cifar10-resnet-projection"


def _overrides(width: float, batch: int) -> list[str]:
    return [
        "data.name=synthetic",
        "data.image_size=32",
        "data.channels=3",
        f"data.batch_size={batch}",
        "data.train_limit=2048",
        "data.test_limit=16",
        f"model.generator.width={width}",
        f"model.discriminator.width={width}",
        "eval.quality_samples=0",
        "optim.decay=constant",
    ]


def _worker(rank, world, port, width, batch, iterations, warmup, out):
    import torch

    torch.set_num_threads(1)
    os.environ.update(
        MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port), RANK=str(rank), WORLD_SIZE=str(world), LOCAL_RANK=str(rank)
    )
    from ganworks.config import resolve
    from ganworks.train import Experiment, distributed
    from ganworks.train.loop import train_iteration

    info, device = distributed.setup(torch.device("cpu"))
    exp = Experiment(resolve(PRESET, _overrides(width, batch)), device)
    distributed.wrap(exp, info)
    for _ in range(warmup):
        train_iteration(exp)
    torch.distributed.barrier()
    t0 = time.perf_counter()
    for _ in range(iterations):
        train_iteration(exp)
    torch.distributed.barrier()
    seconds = time.perf_counter() - t0
    if rank == 0:
        n_dis = exp.objective.schedule.count("d")
        Path(out).write_text(json.dumps({"seconds": seconds, "images": batch * n_dis * iterations}))
    distributed.teardown()


def run(world: int, width: float, batch: int, iterations: int, warmup: int) -> dict:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    with tempfile.TemporaryDirectory() as tmp:
        out = os.path.join(tmp, "r.json")
        ctx = mp.get_context("spawn")
        procs = [
            ctx.Process(target=_worker, args=(r, world, port, width, batch, iterations, warmup, out))
            for r in range(world)
        ]
        for p in procs:
            p.start()
        for p in procs:
            p.join()
        if any(p.exitcode for p in procs):
            raise SystemExit(f"a worker failed: exit codes {[p.exitcode for p in procs]}")
        r = json.loads(Path(out).read_text())
    return {
        "processes": world,
        "seconds": round(r["seconds"], 3),
        "images": r["images"],
        "images_per_s": round(r["images"] / r["seconds"], 2),
    }


def main() -> None:
    import torch
    from common import device_name, write

    ap = argparse.ArgumentParser()
    ap.add_argument("--width", type=float, default=0.25)
    ap.add_argument("--batch", type=int, default=64, help="global batch")
    ap.add_argument("--iterations", type=int, default=5)
    ap.add_argument("--warmup", type=int, default=1)
    a = ap.parse_args()
    load_before = os.getloadavg()
    rows = [run(n, a.width, a.batch, a.iterations, a.warmup) for n in (1, 2)]
    load_after = os.getloadavg()
    torch.set_num_threads(1)
    result = {
        "benchmark": "ddp_scaling",
        "preset": PRESET,
        "device": device_name(torch.device("cpu")),
        "backend": "gloo",
        "threads_per_process": 1,
        "cpu_count": os.cpu_count(),
        "settings": {
            "width": a.width,
            "global_batch": a.batch,
            "iterations": a.iterations,
            "warmup": a.warmup,
            "n_dis": 5,
            "n_gen_samples": 128,
            "data": "synthetic 32x32 in memory",
        },
        "loadavg_before": [round(x, 2) for x in load_before],
        "loadavg_after": [round(x, 2) for x in load_after],
        "runs": rows,
        "speedup_2_vs_1": round(rows[1]["images_per_s"] / rows[0]["images_per_s"], 3),
        "torch": torch.__version__,
    }
    table = ["| processes | images/s | seconds | images |", "|---|---|---|---|"]
    table += [f"| {r['processes']} | {r['images_per_s']} | {r['seconds']} | {r['images']} |" for r in rows]
    table.append("")
    table.append(
        f"{PRESET}, width {a.width}, global batch {a.batch}, {a.iterations} timed iterations after "
        f"{a.warmup} warm-up; gloo, 1 thread per process, {result['device']}. Load average before "
        f"{result['loadavg_before']}, after {result['loadavg_after']} on a {os.cpu_count()}-core machine "
        f"shared with other jobs: the 2-process figure depends on how free the second core was."
    )
    js, md = write("ddp_scaling_cpu", result, "\n".join(table))
    print(json.dumps(result, indent=2))
    print(f"wrote {js} and {md}")


if __name__ == "__main__":
    main()
