"""This process's place in a torchrun job, from the environment torchrun
sets (RANK over all nodes, LOCAL_RANK on this node, WORLD_SIZE), read
without torch: the console entry asks it too, for every command, and a
codec-only install has no torch."""
from __future__ import annotations

import os


def env_world() -> tuple[int, int, int]:
    """(rank, local rank, world size) as torchrun sets them; (0, 0, 1) without torchrun."""
    if "RANK" not in os.environ:
        return 0, 0, 1
    return int(os.environ["RANK"]), int(os.environ.get("LOCAL_RANK", 0)), int(os.environ.get("WORLD_SIZE", 1))


def is_main() -> bool:
    """Whether this process speaks for the run (rank 0, or no torchrun)."""
    return env_world()[0] == 0
