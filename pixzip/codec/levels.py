"""The compression levels: which coded payload, with which model.

Each level is a point on the front of file size against decode time
(measured in the README's "Levels" table): ``-1`` the fastest (the mixer
alone), the default the mixer with the fast network (1.4-1.7x faster to code
than ``-9``, files 2.4% larger), ``-9`` the smallest files (the mixer with
the largest network).  A model is named by its alias (``registry``), so a level
can move to a better model without breaking old files.  The aliases are the
shipped ``aliases.json``'s and name shipped models: nothing in a folder of
$PIXZIP_MODELS (a ``fast.pxm``, an alias table, a file claiming a shipped
model's name) changes what a level codes with.
"""
from __future__ import annotations

from typing import NamedTuple


class Level(NamedTuple):
    method: str              # "network", "mixed" or "mixer" (see api.compress)
    model: str | None        # the model alias, None for the mixer alone


DEFAULT_LEVEL = 6
LEVELS = {
    1: Level("mixer", None),
    DEFAULT_LEVEL: Level("mixed", "fast"),
    9: Level("mixed", "max"),
}


def level_choice(level: int | None) -> Level:
    """The level's method and model (None: the default level)."""
    if level is None:
        level = DEFAULT_LEVEL
    if level not in LEVELS:
        raise ValueError(f"level must be one of {', '.join(map(str, sorted(LEVELS)))}")
    return LEVELS[level]
