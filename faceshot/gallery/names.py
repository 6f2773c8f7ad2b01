"""Person names as people type them: one spelling per person, found however it is typed.

A name is stored *normalised*: Unicode NFC (so ``"Zoë"`` typed on Linux and the decomposed
``"Zoë"`` of a macOS folder name are one name), trimmed, and inner runs of white space collapsed
to one space. Two names that differ only in case are the same person: the first spelling is kept
for display, and any later spelling finds it. A ``/`` is refused, since names become URL path
segments in the REST service.
"""

from __future__ import annotations

import re
import unicodedata

from faceshot.errors import ConfigError

__all__ = ["normalise_name", "name_key"]

_SPACES = re.compile(r"\s+")


def normalise_name(name: str) -> str:
    """The stored form of a person's name; :class:`~faceshot.errors.ConfigError` for an unusable one."""
    if not isinstance(name, str):
        raise ConfigError(f"a person's name is text, got {type(name).__name__}")
    text = _SPACES.sub(" ", unicodedata.normalize("NFC", name)).strip()
    if not text:
        raise ConfigError("a person needs a non-empty name")
    if "/" in text:
        raise ConfigError(f"a person's name cannot contain '/': {text!r}")
    if any(unicodedata.category(ch) == "Cc" for ch in text):
        raise ConfigError(f"a person's name cannot contain control characters: {text!r}")
    return text


def name_key(name: str) -> str:
    """What two spellings of one name share: the normalised name, case-folded."""
    return unicodedata.normalize("NFC", normalise_name(name).casefold())
