"""A visual Turing test of generated images (Salimans et al. 2016 §4; HYPE, Zhou et al. 2019).

:mod:`.study` builds a study folder from a real and generated image sources, :mod:`.server` serves it
to raters (FastAPI + SQLAlchemy, :mod:`.db`), :mod:`.stats` turns votes into HYPE∞ with bootstrap and
Wilson intervals; ``ganworks.cli.turing`` is ``ganworks turing create | serve | results``.  Needs the ``turing``
extra (fastapi, uvicorn, sqlalchemy).
"""
