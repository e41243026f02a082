"""``ganworks presets``: every preset with its paper, table row and published number."""

from __future__ import annotations

import json


def add_parser(sub) -> None:
    p = sub.add_parser("presets", help="list every preset with its paper, table row and published number")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=cmd_presets)


def cmd_presets(args) -> int:
    from ..config import list_presets, load_preset

    rows = []
    for name in list_presets():
        m = load_preset(name)["meta"]
        rows.append(
            {"preset": name, "paper": m["paper"], "table": m["table"], "row": m["row"], "published": m["published"]}
        )
    if args.json:
        print(json.dumps(rows, indent=2))
        return 0
    short = {
        "Improved Techniques for Training GANs (Salimans et al., 2016)": "Improved-GAN",
        "Spectral Normalization for GANs (Miyato et al., 2018)": "SN-GAN",
    }
    width = max(len(r["preset"]) for r in rows)
    for r in rows:
        paper = short.get(r["paper"], r["paper"])
        print(f"{r['preset']:<{width}}  {paper} {r['table']}, {r['row']}: {r['published']}")
    return 0
