"""The compression levels, and the plan: which payloads ``compress`` weighs, coded how, with which model.

Each level is a point on the front of file size against decode time
(measured in the README's "Levels" table): ``-1`` the fastest (the mixer
version 1 alone), the default the mixer version 3 alone, ``-9`` the smallest
files (the mixer version 6 with the largest network; on gray photos the
mixer version 2 over the RGB network's counts of colour 0).  Each level
names its mixer version, whose coder ids differ; versions 3 to 6 code colour
images, and an image of one colour keeps version 2 (``Plan.mixer_for``).
Versions 4 to 6 are made over the network only: alone, the mixer codes version 3
(``coders.MIXER_ALONE``).
A model is named by its alias (``registry``), so a level
can move to a better model without breaking old files.  The aliases are the
shipped ``aliases.json``'s and name shipped models: nothing in a folder of
$PIXZIP_MODELS (a ``fast.pxm``, an alias table, a file claiming a shipped
model's name) changes what a level codes with.

``choose`` turns what a caller asked for (level, model, method, payload)
into a ``Plan``, and ``Plan.for_image`` fits it to the image's colours; both
are pure, so every combination is tested without coding an image.
"""
from __future__ import annotations

import warnings
from dataclasses import dataclass, replace
from typing import Any, NamedTuple

from ..errors import UnknownModelError

# The codings, by the names users give them (``--method``, ``method=``, ``payload=``):
NETWORK = "network"                  # the network alone (coder 1)
MIXER = "mixer"                      # the context mixer alone (coder 2; version 2: 5; versions 3 to 6: 8)
MIXER_NETWORK = "mixer+network"      # the mixer with the network's counts as an input, in column parts (3; 6;
                                     # 9; 10; 11)
METHODS = (NETWORK, MIXER_NETWORK, MIXER)
STORED = ("raw", "deflate")
PAYLOADS = ("auto", "coded") + METHODS + STORED
OLD_NAMES = {"mixed": MIXER_NETWORK}       # still accepted, with a DeprecationWarning


class Level(NamedTuple):
    method: str              # one of METHODS
    model: str | None        # the model alias, None for the mixer alone
    mixer: int = 2           # the mixer's version (``mixer/spec.py``): its coder ids


MIXER_VERSION = 6            # the newest mixer: what a method makes without a level


DEFAULT_LEVEL = 6
LEVELS = {
    1: Level(MIXER, None, 1),
    DEFAULT_LEVEL: Level(MIXER, None, 3),
    9: Level(MIXER_NETWORK, "max", 6),
}
METHOD_MODEL = LEVELS[9].model     # the model of a method named without a level: -9's


def level_choice(level: int | None) -> Level:
    """The level's method and model (None: the default level)."""
    if level is None:
        level = DEFAULT_LEVEL
    if level not in LEVELS:
        raise ValueError(f"level must be one of {', '.join(map(str, sorted(LEVELS)))}")
    return LEVELS[level]


def new_name(name: str | None, what: str = "method", stacklevel: int = 3) -> str | None:
    """A method or payload under its current name; an old one warns
    (DeprecationWarning, at the caller's caller: ``stacklevel``)."""
    if name in OLD_NAMES:
        warnings.warn(f"{what} {name!r} is now called {OLD_NAMES[name]!r}; the old name will be removed in "
                      f"a later version", DeprecationWarning, stacklevel=stacklevel)
        return OLD_NAMES[name]
    return name


@dataclass(frozen=True)
class Plan:
    """What ``compress`` makes: the coded payload (``method``, None for none)
    with ``model`` (a name, alias, path or model; None for the mixer alone),
    and the stored payloads it is weighed against (``stored``; the smallest
    file wins).  ``by_level``: the level chose the network, so that an image
    of other colours than the network's is coded by the mixer alone rather
    than refused."""
    method: str | None
    model: Any
    stored: tuple[str, ...]
    by_level: bool
    mixer: int = MIXER_VERSION      # the mixer's version (the level's)
    gray: bool = False              # a gray image over an RGB network (coder 7; ``for_image``)

    def mixer_for(self, channels: int) -> int:
        """The mixer version that codes an image (or a picture's group of
        planes) of ``channels`` colours: version 3's additions (and so
        versions 4 to 6's) read colours 1 and 2, so an image of one colour keeps
        version 2."""
        return 2 if self.mixer >= 3 and channels != 3 else self.mixer

    def for_image(self, channels: int, model_colors: int | None, model_name: str = "",
                  named: bool = True) -> "Plan":
        """The plan for an image of ``channels`` colours, the plan's network
        coding ``model_colors`` (None: no network): a gray image over an RGB
        network by the mixer version 2 (``mixer+network``) with the network's
        counts of colour 0, the image seen as (L, L, L) (coder 7: 1.4%
        smaller than the mixer alone on gray photos); else the mixer alone
        when the level chose a network of other colours; refused when the
        caller named the model, the method or the coded payload (``named``
        false: a picture's other planes, whose coding the caller did not
        name, take the mixer alone too)."""
        if self.method in (None, MIXER) or model_colors is None or model_colors == channels:
            return replace(self, gray=False) if self.gray else self
        if self.method == MIXER_NETWORK and self.mixer_for(channels) == 2 and channels == 1 and model_colors == 3:
            return replace(self, gray=True)
        if not self.by_level and named:
            from .format.container import MODES
            raise UnknownModelError(f"model {model_name!r} codes {MODES[model_colors]} images, not {MODES[channels]}")
        return replace(self, method=MIXER, model=None)


def tries_every_way(plan: Plan) -> bool:
    """Whether the level is -9's, the smallest files, which also tries the
    slower ways of a picture: a palette image's colours beside its indices
    (measured 1.5-6x the time, and smaller only where the palette's order is
    far from its colours), a 16-bit picture whole by the 16-bit coder beside
    its bytes split (twice the time, and the same size or larger on noisy
    16-bit photos)."""
    return plan.by_level and plan.model == LEVELS[9].model


def choose(level: int | None = None, model: Any = None, method: str | None = None, payload: str = "auto") -> Plan:
    """The plan for what a caller asked: ``level`` (None: the default)
    chooses the method and model; ``method`` named without a level codes
    with -9's model (``METHOD_MODEL``), with a level with the level's;
    ``model`` overrides the level's (and a level without one then mixes
    with it); the mixer over a network without a level is -9's (version
    6), with a level the level's; ``payload`` "auto" weighs the coded payload against the
    stored ones, "coded" makes only it, a method's name makes only that
    coding (with the level's model, or ``model``), "raw" or "deflate" only
    that stored payload.  Old names (``OLD_NAMES``) warn."""
    method, payload = new_name(method, "method", 4), new_name(payload, "payload", 4)    # the caller of compress
    if payload not in PAYLOADS:
        raise ValueError(f"payload must be one of {', '.join(PAYLOADS)}")
    level_method, level_model, mixer = level_choice(level)
    if method is not None and method not in METHODS:
        raise ValueError(f"method must be one of {', '.join(METHODS)}")
    by_level = model is None and method is None and payload in ("auto", "coded")
    if method is None:
        method = MIXER_NETWORK if model is not None and level_method == MIXER else level_method
        if model is None:
            model = level_model
    elif model is None and method != MIXER:
        model = METHOD_MODEL if level is None else level_model
    if payload in METHODS:
        method = payload
    if level is None and method == MIXER_NETWORK != level_method:
        mixer = LEVELS[9].mixer     # the mixer over a network asked for without a level: -9's, as its model
    if payload in STORED:
        method = None
    if method in (None, MIXER):
        model = None
    elif model is None:         # a network method where the level has no network
        model = METHOD_MODEL
    stored = STORED if payload == "auto" else (payload,) if payload in STORED else ()
    return Plan(method, model, stored, by_level, mixer)
