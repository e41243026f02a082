"""Data-parallel training on N processes: ``torchrun --nproc-per-node N -m ganworks train PRESET``
(or ``ganworks train --nproc N PRESET``, which launches exactly that).

The reference ImageNet runs are data-parallel on 4 GPUs (SN-GAN: 16 images each; Improved-GAN:
16 each), and one GPU at batch 16 does worse (sngan_projection #21). Here:

* **Backend**: NCCL when the run's device is CUDA (each rank on ``cuda:LOCAL_RANK``), gloo on CPU.
* **Batch**: ``data.batch_size`` (and the conditional objective's ``n_gen_samples``) are the
  **global** numbers; each rank takes 1/N of them (they must divide).
* **Data**: the streams are rank-aware. Batch i of an epoch is the same global batch as in a
  one-process run, and rank r takes its r-th block of rows, so the ranks together visit each
  example once per epoch and the concatenation of the N rank batches *is* the one-process batch.
* **Gradients**: during a player's phase that player is wrapped in
  ``torch.nn.parallel.DistributedDataParallel``, which averages its gradients over the ranks in
  ``backward``; the frozen player is called unwrapped (it gets no gradients, so nothing to reduce).
  For a model without batch statistics the averaged gradient of N × b equals the gradient of one
  process on the N·b batch (tested in float64).
* **Buffers**: parameters start equal (same seed; DDP also broadcasts rank 0's at wrapping).
  Spectral norm's u, v and BN's running statistics are buffers: DDP broadcasts rank 0's buffers
  at the start of every wrapped forward (``broadcast_buffers=True``, called ``forward_sync_buffers`` in newer torch), so every rank's power
  iteration starts from the same u, and the running statistics used for sampling are rank 0's
  (only rank 0 samples and saves). ``train.sync_bn = true`` converts G's BNs (the conditional
  BNs' inner BN too) to ``SyncBatchNorm`` so the batch statistics are those of the global batch
  (CUDA only).
* **Randomness**: every phase of every iteration re-seeds the rank's torch RNG from
  (train.seed, rank, iteration, phase), so ranks draw different noise and a resumed run draws
  exactly what the uninterrupted one did.
* **Writing**: rank 0 runs the ordinary loop (logs, samples, evaluation, checkpoints); the other
  ranks run the same iterations silently. Checkpoints record the world size; resuming with
  another raises ``CheckpointError`` (``experiment.check_world_size``).

Not supported under N > 1 processes (a ``ConfigError`` says so): ``train.max_minutes`` (the ranks
would stop at different iterations).

* **Signals**: as with one process, SIGINT/SIGTERM stop the run after the current iteration: the
  ranks agree on the stop after every iteration (``agree_stop``), rank 0 saves ``last.pt`` and
  writes ``status.json``, and every rank exits 130 / 143 (``train/run.py`` finishes both paths).
"""

from __future__ import annotations

import datetime
import inspect
import os
from contextlib import contextmanager
from dataclasses import dataclass

import torch
import torch.distributed as dist
from torch.nn.parallel import DistributedDataParallel

from ..errors import ConfigError


@dataclass
class DistInfo:
    rank: int = 0
    world_size: int = 1
    local_rank: int = 0

    @property
    def is_main(self) -> bool:
        return self.rank == 0


def launched_by_torchrun() -> bool:
    return "RANK" in os.environ and "WORLD_SIZE" in os.environ


def rank() -> int:
    """This process's rank under torchrun (0 for a process of its own): rank 0 writes the run folder."""
    return int(os.environ.get("RANK", "0"))


def setup(device: torch.device) -> tuple[DistInfo, torch.device]:
    """Join the process group torchrun set up (env://); returns the rank info and this rank's device."""
    info = DistInfo(int(os.environ["RANK"]), int(os.environ["WORLD_SIZE"]), int(os.environ.get("LOCAL_RANK", 0)))
    if device.type == "cuda":
        device = torch.device("cuda", info.local_rank)
        torch.cuda.set_device(device)
    if not dist.is_initialized():
        dist.init_process_group(
            "nccl" if device.type == "cuda" else "gloo", timeout=datetime.timedelta(hours=2)
        )  # rank 0 evaluates while the others wait
    return info, device


def teardown() -> None:
    if dist.is_initialized():
        dist.destroy_process_group()


# rank 0's buffers are broadcast at every forward (the option's name changed in newer torch)
_SYNC_BUFFERS = (
    {"forward_sync_buffers": True}
    if "forward_sync_buffers" in inspect.signature(DistributedDataParallel.__init__).parameters
    else {"broadcast_buffers": True}
)


class _DDP(DistributedDataParallel):
    """DDP that forwards unknown attributes (``sample_z``, ``num_classes``, ...) to the model."""

    def __getattr__(self, name):
        try:
            return super().__getattr__(name)
        except AttributeError:
            return getattr(self.module, name)


class RankStream:
    """Rank r's rows of an in-memory stream built with the global batch size."""

    def __init__(self, stream, info: DistInfo) -> None:
        self.inner, self.info = stream, info
        self.batch_size = stream.batch_size // info.world_size

    @property
    def batches_per_epoch(self) -> int:
        return self.inner.batches_per_epoch

    def batch(self, epoch: int, index: int) -> dict:
        rows = slice(self.info.rank * self.batch_size, (self.info.rank + 1) * self.batch_size)
        return {k: v[rows] for k, v in self.inner.batch(epoch, index).items()}

    def __getattr__(self, name):
        return getattr(self.inner, name)


def check_config(cfg: dict, world_size: int) -> None:
    d, t, o = cfg["data"], cfg["train"], cfg["objective"]
    if d["batch_size"] % world_size:
        raise ConfigError(
            f"data.batch_size {d['batch_size']} (the global batch) is not divisible by the "
            f"{world_size} processes: choose a multiple of {world_size}"
        )
    if o.get("n_gen_samples", 0) % world_size:
        raise ConfigError(
            f"objective.n_gen_samples {o['n_gen_samples']} is not divisible by the {world_size} processes"
        )
    if world_size > 1 and t["max_minutes"]:
        raise ConfigError(
            "train.max_minutes cannot be used with several processes (they would stop at different "
            "iterations): set train.iterations instead"
        )


def wrap(exp, info: DistInfo) -> None:
    """Make ``exp`` data-parallel over the process group (call after any ``load_state_dict``)."""
    from ..data.folder import FolderStream

    n = info.world_size
    cfg = exp.cfg
    check_config(cfg, n)
    exp.world_size = n
    exp.dist = info
    if isinstance(exp.stream, FolderStream):
        s = exp.stream
        exp.stream = FolderStream(
            s.data, s.batch_size // n, s.scale, s.seed, s.device, s.workers, s.dequantize, rank=info.rank, world_size=n
        )
    else:
        exp.stream = RankStream(exp.stream, info)
    obj = exp.objective
    obj.batch_size = exp.stream.batch_size
    if getattr(obj, "n_gen_samples", 0):
        obj.n_gen_samples //= n
    if cfg["train"].get("sync_bn"):
        if exp.device.type != "cuda":
            raise ConfigError("train.sync_bn needs CUDA devices (SyncBatchNorm has no CPU kernel)")
        exp.G = torch.nn.SyncBatchNorm.convert_sync_batchnorm(exp.G)
        obj.G = exp.G
    ids = [exp.device.index] if exp.device.type == "cuda" else None
    raw = {"d": exp.D, "g": exp.G}
    wrapped = {k: _DDP(m, device_ids=ids, **_SYNC_BUFFERS) for k, m in raw.items()}
    seed = int(cfg["train"]["seed"])
    counter = {"iteration": -1, "phase": 0}
    outer = exp.phase_context

    @contextmanager
    def phase_context(phase: str):
        it = exp.position["iteration"]
        if counter["iteration"] != it:
            counter.update(iteration=it, phase=0)
        torch.manual_seed(hash_seed(seed, info.rank, it, counter["phase"]))
        counter["phase"] += 1
        obj.D = wrapped["d"] if phase == "d" else raw["d"]
        obj.G = wrapped["g"] if phase == "g" else raw["g"]
        try:
            with outer(phase):
                yield
        finally:
            obj.D, obj.G = raw["d"], raw["g"]

    exp.phase_context = phase_context
    exp.agree_stop = agree_stop


#: the signals a run stops on, in the order of their flag in ``agree_stop``'s reduction
_SIGNALS = ("SIGINT", "SIGTERM")


def agree_stop(stop: str | None) -> str | None:
    """After every iteration all ranks learn whether any of them got SIGINT/SIGTERM (one small
    all-reduce), so they all stop at the same iteration: rank 0 saves, every rank exits 130/143."""
    flags = torch.tensor([float(stop == name) for name in _SIGNALS])
    dist.all_reduce(flags, op=dist.ReduceOp.MAX)
    for name, flag in zip(_SIGNALS, flags.tolist()):
        if flag:
            return stop or name
    return None


def hash_seed(*parts: int) -> int:
    """A 63-bit seed from integers (splitmix64 over the parts)."""
    x = 0x9E3779B97F4A7C15
    for p in parts:
        x = (x ^ (int(p) & 0xFFFFFFFFFFFFFFFF)) * 0xBF58476D1CE4E5B9 & 0xFFFFFFFFFFFFFFFF
        x = (x ^ (x >> 31)) * 0x94D049BB133111EB & 0xFFFFFFFFFFFFFFFF
    return x >> 1


def train_distributed(exp, run_dir, progress: bool = True) -> dict:
    """Rank 0 runs the ordinary loop (and writes); the other ranks run the same iterations silently."""
    from .loop import _graceful_interrupt, train, train_iteration

    info = getattr(exp, "dist", None) or DistInfo()
    if info.is_main:
        row = train(exp, run_dir, progress=progress)
    else:
        row = {}
        with _graceful_interrupt() as interrupt:
            while exp.position["iteration"] < exp.total_iterations:
                train_iteration(exp)
                interrupt["stop"] = exp.agree_stop(interrupt["stop"])
                if interrupt["stop"]:
                    row["interrupted"] = interrupt["stop"]
                    break
        row["iteration"] = exp.position["iteration"]
    if dist.is_initialized():
        dist.barrier()  # nobody leaves before rank 0 has written the last checkpoint
    return row
