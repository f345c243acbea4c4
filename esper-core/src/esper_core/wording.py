"""English plurals for names and counts in messages ("known policies", "1 sink, 2 observers")."""

from __future__ import annotations

_VOWELS = "aeiou"


def plural(noun: str) -> str:
    """The plural of a singular English noun (the last word of ``noun`` is inflected)."""
    if noun.endswith("y") and len(noun) > 1 and noun[-2] not in _VOWELS:
        return noun[:-1] + "ies"
    if noun.endswith(("s", "x", "z", "ch", "sh")):
        return noun + "es"
    return noun + "s"


def singular(noun: str) -> str:
    """The singular of a regular plural made by :func:`plural` ("policies" → "policy")."""
    if noun.endswith("ies"):
        return noun[:-3] + "y"
    if noun.endswith(("ses", "xes", "zes", "ches", "shes")):
        return noun[:-2]
    return noun.removesuffix("s")


def count(n: int, noun: str) -> str:
    """``n`` followed by the singular ``noun`` or its plural: "1 sink", "2 sinks"."""
    return f"{n} {noun if n == 1 else plural(noun)}"
