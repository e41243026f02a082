"""Shared pieces of the benchmarks: device names, the matrix-multiply floor, result files."""

from __future__ import annotations

import json
import platform
import time
from pathlib import Path

import torch

RESULTS = Path(__file__).resolve().parent / "results"


def device_name(device: torch.device) -> str:
    if device.type == "cuda":
        return torch.cuda.get_device_name(device)
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return f"{line.split(':', 1)[1].strip()} ({torch.get_num_threads()} threads)"
    except OSError:
        pass
    return f"{platform.processor() or 'cpu'} ({torch.get_num_threads()} threads)"


def sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def matmul_rate(device: torch.device, n: int = 1024, seconds: float = 2.0) -> float:
    """FLOP/s of a square float32 matmul in this process: the floor's denominator."""
    a, b = torch.randn(n, n, device=device), torch.randn(n, n, device=device)
    for _ in range(3):
        a @ b
    sync(device)
    reps, t0 = 0, time.perf_counter()
    while time.perf_counter() - t0 < seconds:
        a @ b
        reps += 1
    sync(device)
    return 2 * n**3 * reps / (time.perf_counter() - t0)


def count_flops(fn) -> int:
    """FLOPs (matmuls/convolutions, forward and backward) of one call of ``fn``."""
    from torch.utils.flop_counter import FlopCounterMode

    with FlopCounterMode(display=False) as counter:
        fn()
    return counter.get_total_flops()


def time_calls(fn, device: torch.device, n: int, warmup: int = 3) -> float:
    """Median-free mean milliseconds per call of ``fn`` after warm-up."""
    for _ in range(warmup):
        fn()
    sync(device)
    t0 = time.perf_counter()
    for _ in range(n):
        fn()
    sync(device)
    return (time.perf_counter() - t0) / n * 1000


def timed_runs(fn, repeats: int, warmup: int = 1) -> list[float]:
    """Milliseconds of each of ``repeats`` calls of ``fn`` (CPU wall clock) after ``warmup`` calls."""
    for _ in range(warmup):
        fn()
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        times.append((time.perf_counter() - t0) * 1e3)
    return times


def write(name: str, result: dict, table: str) -> tuple[Path, Path]:
    RESULTS.mkdir(parents=True, exist_ok=True)
    js, md = RESULTS / f"{name}.json", RESULTS / f"{name}.md"
    js.write_text(json.dumps(result, indent=2) + "\n")
    md.write_text(table.rstrip() + "\n")
    return js, md


def step_figures(cfg: dict, device: torch.device, iterations: int) -> dict:
    """ms per training iteration (the loop's own ``train_iteration``), its FLOPs, and the floor:
    FLOPs over the matmul rate measured in this process; ``ratio_to_floor`` = ms / floor."""
    from ganworks.train import Experiment
    from ganworks.train.loop import train_iteration

    exp = Experiment(cfg, device)
    flops = count_flops(lambda: train_iteration(exp))
    ms = time_calls(lambda: train_iteration(exp), device, iterations)
    rate = matmul_rate(device)
    floor_ms = flops / rate * 1000
    return {
        "ms_per_iteration": round(ms, 3),
        "flops_per_iteration": flops,
        "matmul_gflops": round(rate / 1e9, 1),
        "floor_ms": round(floor_ms, 3),
        "ratio_to_floor": round(ms / floor_ms, 3),
        "timed_iterations": iterations,
    }
