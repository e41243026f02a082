"""Regularizers and discriminator constraints, as pure functions or small in-place operations.

Each function's docstring names the paper section it implements.
"""

from __future__ import annotations
