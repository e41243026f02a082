"""Comparison logic of the reference-equivalence benchmark (pure NumPy; no reference stack needed).

A *check* compares one quantity computed by ganworks with the same quantity computed by the
authors' reference code on identical weights, inputs and random draws. For every array:

* ``max_abs`` = max |ours − ref|;
* ``max_rel`` = max |ours − ref| / max |ref|: the error relative to the array's scale (an
  element-wise ratio would blow up on entries that are zero by construction, e.g. ReLU outputs);
* it passes when ``max_rel <= rtol`` (or ``max_abs <= atol``, for arrays that are all ~0).

``atol_of_check=True`` sets atol = rtol × the largest reference scale among the check's arrays: for
gradients that are zero by construction (e.g. a conv bias followed by batch norm) both sides return
rounding noise, which is judged against the largest gradient of the same check rather than itself.

Measured tolerances (``check_measured``): a float32 comparison is judged by the rounding noise
measured on the same instance run in float64 on both sides. Element-wise,

    |ours32 − ref32| <= 4 (|ref32 − ref64| + |ours32 − ours64|) + 4 float32 ulp of max |ref32|,

and the float64 pair must agree to ``RTOL_FLOAT64`` relative (``check`` with that rtol). Each
array's ``bound_ratio`` is its largest |ours32 − ref32| / bound (pass: <= 1).

A check over several arrays (e.g. every parameter's gradient) passes only if each does; its figure
is the worst array. ``deviation=True`` marks a difference that exists by design; such a check is
reported with its measured size and never counts as a failure.
"""

from __future__ import annotations

import json
import math
from dataclasses import asdict, dataclass, field

import numpy as np

#: single-step target (float32) and the 20-iteration trajectory target [issue 12]
RTOL_STEP = 1e-5
RTOL_TRAJECTORY = 1e-4
ATOL_FLOOR = 1e-12
#: float64 pairs [issue 23]
RTOL_FLOAT64 = 1e-10
#: measured tolerance: NOISE_FACTOR × (both sides' measured float32 rounding) + ULP_FACTOR float32 ulp
NOISE_FACTOR = 4.0
ULP_FACTOR = 4.0
MEASURED = "4×measured noise + 4 ulp"


@dataclass
class ArrayDiff:
    name: str
    shape: tuple
    max_abs: float
    max_rel: float
    ref_scale: float
    passed: bool
    bound_ratio: float = math.nan  # measured tolerance only: max |ours32 − ref32| / bound


@dataclass
class Check:
    component: str
    reference: str  # reference file and function
    ours: str  # ganworks function/module
    rtol: float
    arrays: list[ArrayDiff] = field(default_factory=list)
    deviation: bool = False
    note: str = ""
    section: str = ""
    info: bool = False  # a diagnostic measurement, not a ganworks-vs-reference check
    tolerance: str = ""  # "" (rtol) or MEASURED

    @property
    def worst(self) -> str:
        """The name of the check's worst array (by bound ratio for measured tolerances, else max_rel)."""
        if not self.arrays:
            return ""
        key = (lambda a: a.bound_ratio) if self.tolerance == MEASURED else (lambda a: a.max_rel)
        return max(self.arrays, key=lambda a: (not a.passed, key(a))).name

    @property
    def max_abs(self) -> float:
        return max((a.max_abs for a in self.arrays), default=math.nan)

    @property
    def max_rel(self) -> float:
        return max((a.max_rel for a in self.arrays), default=math.nan)

    @property
    def passed(self) -> bool:
        return bool(self.arrays) and all(a.passed for a in self.arrays)

    @property
    def status(self) -> str:
        if self.info:
            return "info"
        if self.deviation:
            return "deviation"
        return "pass" if self.passed else "FAIL"

    def to_dict(self) -> dict:
        d = asdict(self)
        d.update(
            max_abs=self.max_abs,
            max_rel=self.max_rel,
            status=self.status,
            worst=self.worst,
            shapes=sorted({str(tuple(a.shape)) for a in self.arrays}),
        )
        return d


def diff(name: str, ours, ref, rtol: float, atol: float = 0.0) -> ArrayDiff:
    """Compare two arrays of the same shape (a shape mismatch is a failure, never broadcast)."""
    a = np.asarray(ours, dtype=np.float64)
    b = np.asarray(ref, dtype=np.float64)
    if a.shape != b.shape:
        return ArrayDiff(name, tuple(b.shape), math.inf, math.inf, math.nan, False)
    if a.size == 0:
        return ArrayDiff(name, tuple(b.shape), 0.0, 0.0, 0.0, True)
    if not (np.all(np.isfinite(a)) and np.all(np.isfinite(b))):
        return ArrayDiff(name, tuple(b.shape), math.inf, math.inf, math.nan, False)
    err = float(np.max(np.abs(a - b)))
    scale = float(np.max(np.abs(b)))
    rel = err / max(scale, ATOL_FLOOR)
    return ArrayDiff(name, tuple(b.shape), err, rel, scale, rel <= rtol or err <= atol)


def diff_measured(name: str, ours32, ref32, ours64, ref64) -> ArrayDiff:
    """Judge float32 ``ours32`` vs ``ref32`` by the rounding noise the float64 runs of the same
    instance measure on each side (see the module docstring); a shape mismatch or a non-finite value fails."""
    a, b, c, d = (np.asarray(x, dtype=np.float64) for x in (ours32, ref32, ours64, ref64))
    if not (a.shape == b.shape == c.shape == d.shape):
        return ArrayDiff(name, tuple(b.shape), math.inf, math.inf, math.nan, False, math.inf)
    if a.size == 0:
        return ArrayDiff(name, tuple(b.shape), 0.0, 0.0, 0.0, True, 0.0)
    if not all(np.all(np.isfinite(x)) for x in (a, b, c, d)):
        return ArrayDiff(name, tuple(b.shape), math.inf, math.inf, math.nan, False, math.inf)
    err = np.abs(a - b)
    scale = float(np.max(np.abs(b)))
    ulp = float(np.spacing(np.float32(scale))) if scale > 0 else float(np.finfo(np.float32).tiny)
    bound = NOISE_FACTOR * (np.abs(b - d) + np.abs(a - c)) + ULP_FACTOR * ulp
    ratio = float(np.max(err / bound))
    e = float(np.max(err))
    return ArrayDiff(name, tuple(b.shape), e, e / max(scale, ATOL_FLOOR), scale, ratio <= 1.0, ratio)


def check_measured(
    component: str,
    reference: str,
    ours_name: str,
    arrays: dict,
    deviation: bool = False,
    note: str = "",
    section: str = "",
    info: bool = False,
) -> Check:
    """A float32 check judged by measured rounding noise: ``arrays`` = {name: (ours32, ref32, ours64, ref64)}."""
    c = Check(
        component,
        reference,
        ours_name,
        math.nan,
        deviation=deviation,
        note=note,
        section=section,
        info=info,
        tolerance=MEASURED,
    )
    for name, (o32, r32, o64, r64) in arrays.items():
        c.arrays.append(diff_measured(name, o32, r32, o64, r64))
    return c


def check(
    component: str,
    reference: str,
    ours_name: str,
    pairs: dict,
    rtol: float = RTOL_STEP,
    atol: float = 0.0,
    deviation: bool = False,
    note: str = "",
    section: str = "",
    atol_of_check: bool = False,
    info: bool = False,
) -> Check:
    """A check over ``pairs``: {array name: (ours, ref)}. Keys must be the same on both sides."""
    c = Check(component, reference, ours_name, rtol, deviation=deviation, note=note, section=section, info=info)
    c.raw, c.atol_of_check = pairs, atol_of_check  # kept (not serialised) for ``measure_pair``
    if atol_of_check and pairs:
        scales = [float(np.max(np.abs(np.asarray(r, dtype=np.float64)))) for _, r in pairs.values() if np.size(r)]
        atol = max(atol, rtol * max(scales, default=0.0))
    for name, (ours, ref) in pairs.items():
        c.arrays.append(diff(name, ours, ref, rtol, atol))
    return c


def measure_pair(c32: Check, c64: Check) -> tuple[Check, Check]:
    """Re-judge a float32 check and its float64 twin (same instance, upcast) from their arrays: the
    float64 pair to ``RTOL_FLOAT64`` (zero-by-construction arrays still against the check's largest
    array when the check said so), the float32 pair by the measured rounding noise (``check_measured``).

    A float64 twin that differs by design (``deviation``) makes the float32 row a deviation too: the
    float64 difference is then the measured cause of the float32 one. Both checks must come from
    ``check`` (which keeps the arrays) and hold the same array names."""
    if set(c32.raw) != set(c64.raw):
        raise KeyError(f"{c32.component}: float32 and float64 arrays differ: {sorted(set(c32.raw) ^ set(c64.raw))}")
    kw = dict(reference=c64.reference, ours_name=c64.ours, section=c64.section, info=c64.info)
    wide = check(
        c64.component,
        pairs=c64.raw,
        rtol=RTOL_FLOAT64,
        atol_of_check=c64.atol_of_check,
        deviation=c64.deviation,
        note=c64.note,
        **kw,
    )
    arrays = {k: (c32.raw[k][0], c32.raw[k][1], c64.raw[k][0], c64.raw[k][1]) for k in sorted(c32.raw)}
    narrow = check_measured(
        c32.component,
        c32.reference,
        c32.ours,
        arrays,
        section=c32.section,
        info=c32.info,
        deviation=c32.deviation or (c64.deviation and not wide.passed),
        note=c32.note,
    )
    return narrow, wide


def measure_sections(checks32: list[Check], checks64: list[Check], tag: str = " [float64]") -> list[Check]:
    """``measure_pair`` over two runs of one section: each float32 check with the float64 check named
    ``component + tag``; checks without a twin (e.g. a diagnostic only one precision computes) are kept
    as they were judged."""
    twins = {c.component: c for c in checks64}
    out32, out64, used = [], [], set()
    for c in checks32:
        twin = twins.get(c.component + tag)
        if twin is None or not hasattr(c, "raw") or not hasattr(twin, "raw"):
            out32.append(c)
            continue
        narrow, wide = measure_pair(c, twin)
        out32.append(narrow)
        out64.append(wide)
        used.add(twin.component)
    out64 += [measure_pair_64(c) if hasattr(c, "raw") else c for c in checks64 if c.component not in used]
    return out32 + out64


def measure_pair_64(c64: Check) -> Check:
    """A float64 check without a float32 twin, re-judged to ``RTOL_FLOAT64``."""
    return check(
        c64.component,
        c64.reference,
        c64.ours,
        c64.raw,
        rtol=RTOL_FLOAT64,
        atol_of_check=c64.atol_of_check,
        deviation=c64.deviation,
        note=c64.note,
        section=c64.section,
        info=c64.info,
    )


def pair_up(ours: dict, ref: dict) -> dict:
    """{name: (ours[name], ref[name])}; a name missing on either side raises (no silent skips)."""
    missing = set(ours) ^ set(ref)
    if missing:
        raise KeyError(f"arrays present on one side only: {sorted(missing)}")
    return {k: (ours[k], ref[k]) for k in sorted(ours)}


def merge_rows(old_rows: list[dict], new_checks: list[Check], sections: set[str]) -> list[dict]:
    """Rows of an earlier results file, with the sections run now replaced by their new checks."""
    kept = [r for r in old_rows if r.get("section") not in sections]
    return kept + [c.to_dict() for c in new_checks]


def judged_rel(row: dict) -> tuple[float, int]:
    """The row's worst max_rel over arrays judged by it, and how many passed by atol instead
    (zero-by-construction arrays whose rounding noise is large relative to themselves)."""
    by_atol = [a for a in row["arrays"] if a["passed"] and a["max_rel"] > row["rtol"]]
    judged = [a["max_rel"] for a in row["arrays"] if a not in by_atol]
    return (max(judged) if judged else row["max_rel"]), len(by_atol)


def render_markdown(rows: list[dict], meta: dict) -> str:
    lines = ["# Reference equivalence: ganworks vs the authors' code", ""]
    for k, v in meta.items():
        lines.append(f"- **{k}**: {v}")
    lines += [
        "",
        "max rel = max |ours − ref| / max |ref| per array; each row shows its worst array. "
        "Status: pass (within target), FAIL, deviation (differs by design; the measured size is shown) or info "
        "(a diagnostic measurement, e.g. the reference against itself in another precision). "
        "(+n atol): n arrays are zero by construction (e.g. a conv bias followed by BN) and were judged "
        "against the row's largest array instead of themselves (compare.py); they are left out of max rel. "
        "Rows with target '" + MEASURED + "' are float32 rows judged element-wise by the rounding noise "
        "measured on the same instance in float64 on both sides: |ours32 − ref32| <= 4 (|ref32 − ref64| + "
        "|ours32 − ours64|) + 4 float32 ulp of the array's largest magnitude; the figure is the worst array's "
        "max rel and its largest ratio to that bound (pass: <= 1). (worst: name) names the row's worst array.",
        "",
        "| component | reference (file: function) | ours | shapes | max abs | max rel | target | status |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        shapes = ", ".join(s.replace(" ", "") for s in r["shapes"])
        if len(shapes) > 60:
            shapes = f"{len(r['arrays'])} arrays"
        if r.get("tolerance") == MEASURED:
            worst = max(r["arrays"], key=lambda a: (not a["passed"], a["bound_ratio"]))
            rel_s = f"{worst['max_rel']:.3g} (worst: {worst['name']}, {worst['bound_ratio']:.3g}× bound)"
            target = MEASURED
        else:
            rel, n_atol = judged_rel(r)
            rel_s = f"{rel:.3g}" + (f" (+{n_atol} atol)" if n_atol else "")
            if r.get("worst"):
                rel_s += f" (worst: {r['worst']})"
            target = f"{r['rtol']:g}"
        lines.append(
            f"| {r['component']} | {r['reference']} | {r['ours']} | {shapes} | {r['max_abs']:.3g} | "
            f"{rel_s} | {target} | {r['status']} |"
        )
    notes = [r for r in rows if r.get("note")]
    if notes:
        lines += ["", "## Notes", ""]
        lines += [f"- **{r['component']}**: {r['note']}" for r in notes]
    failed = [r for r in rows if r["status"] == "FAIL"]
    if failed:
        lines += ["", "## Failing arrays", ""]
        for r in failed:
            measured = r.get("tolerance") == MEASURED
            bad = sorted(
                (a for a in r["arrays"] if not a["passed"]),
                key=lambda a: -(a["bound_ratio"] if measured else a["max_rel"]),
            )
            for a in bad[:5]:
                lines.append(
                    f"- {r['component']} / {a['name']}: max abs {a['max_abs']:.3g}, "
                    f"max rel {a['max_rel']:.3g}" + (f", {a['bound_ratio']:.3g}× bound" if measured else "")
                )
            if len(bad) > 5:
                lines.append(
                    f"- {r['component']}: {len(bad) - 5} more failing arrays of {len(r['arrays'])} "
                    f"(all listed in the .json)"
                )
    return "\n".join(lines) + "\n"


def write_results(rows: list[dict], meta: dict, json_path, md_path) -> None:
    with open(json_path, "w") as f:
        json.dump({"meta": meta, "checks": rows}, f, indent=1, default=float)
    with open(md_path, "w") as f:
        f.write(render_markdown(rows, meta))
