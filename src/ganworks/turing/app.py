"""The ASGI app uvicorn imports (``ganworks.turing.app:app``), configured by ``ganworks turing serve``
through environment variables so it also works with several uvicorn worker processes."""

from __future__ import annotations

import json
import os

from ganworks.turing.server import WORKER_PARAMS, create_app

_cfg = json.loads(os.environ.get("GANWORKS_TURING_CONFIG", "{}"))
app = create_app(
    os.environ["GANWORKS_TURING_STUDY"],
    db_url=_cfg.get("db_url"),
    token=os.environ["GANWORKS_TURING_TOKEN"],
    worker_params=_cfg.get("worker_params") or WORKER_PARAMS,
    completion_url=_cfg.get("completion_url"),
    sync=_cfg.get("sync", "normal"),
    processes=int(_cfg.get("workers", 1)),
)
