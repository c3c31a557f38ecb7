"""Local wall times and instants: the rule lives in :mod:`contracts.walltime` (pure code the
services' domain layers may import); this module names the same functions."""

from __future__ import annotations

from contracts.walltime import WallStatus, local_instant, local_wall, wall_status

__all__ = ["WallStatus", "local_instant", "local_wall", "wall_status"]
