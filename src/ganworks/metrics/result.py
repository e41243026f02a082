"""The result of an evaluation: scores plus the full protocol that produced them, JSON-serialisable."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path


@dataclass
class MetricsResult:
    """``scores``: name → float (e.g. ``IS``, ``IS_std``, ``FID``, ``KID``, ``KID_std``, or
    ``mnist-classifier-FID``); ``protocol``: how they were computed (sample counts, reference
    split, extractor, weights sha256, IS splits and shuffling, KID subsets, versions)."""

    scores: dict = field(default_factory=dict)
    protocol: dict = field(default_factory=dict)
    notes: list = field(default_factory=list)
    #: fake features/logits (float64 arrays) for reuse; not serialised
    arrays: dict = field(default_factory=dict, repr=False, compare=False)

    def to_dict(self) -> dict:
        return {"scores": dict(self.scores), "protocol": dict(self.protocol), "notes": list(self.notes)}

    def to_json(self, indent: int = 2) -> str:
        return json.dumps(self.to_dict(), indent=indent, sort_keys=False, default=_jsonable)

    def save_json(self, path) -> Path:
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(self.to_json() + "\n")
        return path

    @classmethod
    def from_dict(cls, d: dict) -> MetricsResult:
        return cls(scores=dict(d["scores"]), protocol=dict(d["protocol"]), notes=list(d.get("notes", [])))

    def table(self) -> str:
        """A short plain-text table: one row per score (mean ± std where there is one)."""
        rows = []
        for k, v in self.scores.items():
            if k.endswith("_std"):
                continue
            std = self.scores.get(k + "_std")
            rows.append((k, f"{v:.6g}" + (f" ± {std:.3g}" if std is not None else "")))
        p = self.protocol
        rows.append(("n_fake / n_real", f"{p.get('n_fake')} / {p.get('n_real')}"))
        rows.append(("extractor", f"{p.get('extractor')} ({str(p.get('weights_sha256'))[:12]})"))
        if p.get("reference"):
            rows.append(("reference", str(p.get("reference"))))
        w = max(len(r[0]) for r in rows)
        lines = [f"{a:<{w}}  {b}" for a, b in rows]
        lines += [f"note: {n}" for n in self.notes]
        return "\n".join(lines)


def _jsonable(o):
    try:
        import numpy as np

        if isinstance(o, np.generic):
            return o.item()
        if isinstance(o, np.ndarray):
            return o.tolist()
    except ImportError:  # pragma: no cover
        pass
    if isinstance(o, Path):
        return str(o)
    raise TypeError(f"not JSON serialisable: {type(o).__name__}")
