"""Names of a scaffolded plugin, derived from its distribution name and checked up front.

A distribution name follows the core metadata rule (PEP 508 names: ASCII letters, digits,
``.``, ``_``, ``-``; starting and ending with a letter or digit) and is written in the
normalised form of PEP 503 (lower case, runs of ``-_.`` become ``-``), which is what
``pip`` and ``importlib.metadata`` show. The import package is that name with ``-`` as ``_``;
the entry point and the components are named after the part following ``esper-``.
"""

from __future__ import annotations

import keyword
import re

from attrs import frozen

from esper_core.errors import ConfigError

_DISTRIBUTION = re.compile(r"^([a-z0-9]|[a-z0-9][a-z0-9._-]*[a-z0-9])$", re.IGNORECASE)
_COMPONENT = re.compile(r"^[a-z][a-z0-9_]*$")
PREFIX = "esper-"
#: The longest distribution name: it names the default directory and, as the import package, a
#: folder of the distribution, so it must fit a file name (255 bytes on common file systems) with
#: room to spare; real ones are a few words.
MAX_NAME_LENGTH = 100


@frozen(kw_only=True)
class PluginNames:
    """Every name the generated distribution uses."""

    distribution: str  # esper-my-blocks
    package: str  # esper_my_blocks
    short: str  # my_blocks: the entry-point name and the stem of every component name

    @classmethod
    def from_distribution(cls, raw: str) -> PluginNames:
        """Check ``raw`` and derive the other names; a :class:`ConfigError` says what is wrong."""
        if len(raw) > MAX_NAME_LENGTH:  # every derived name is at most as long
            raise ConfigError(f"{raw[:20]!r}… ({len(raw)} characters) is too long for a distribution name; "
                              f"use at most {MAX_NAME_LENGTH} characters (e.g. esper-my-blocks)")
        if not _DISTRIBUTION.match(raw):
            raise ConfigError(
                f"{raw!r} is not a valid distribution name: use ASCII letters, digits, '-', '_' or '.', "
                "starting and ending with a letter or digit (e.g. esper-my-blocks)"
            )
        distribution = re.sub(r"[-_.]+", "-", raw).lower()
        package = distribution.replace("-", "_")
        if distribution == "esper":
            raise ConfigError(f"{raw!r} names no plugin: add a name after 'esper-' (e.g. esper-my-blocks)")
        short = distribution.removeprefix(PREFIX).replace("-", "_")
        if keyword.iskeyword(package):
            raise ConfigError(f"{raw!r} gives the import package {package!r}, which is a Python keyword and "
                              f"cannot be imported; choose another name (e.g. esper-{package})")
        if not package.isidentifier():
            raise ConfigError(f"{raw!r} gives the import package {package!r}, which is not a Python identifier; "
                              "start the name with a letter")
        if not _COMPONENT.match(short):
            raise ConfigError(f"{raw!r} gives the component name {short!r}, which must start with a letter "
                              "(e.g. esper-my-blocks gives my_blocks)")
        return cls(distribution=distribution, package=package, short=short)

    @property
    def class_stem(self) -> str:
        """``MyBlocks``: the prefix of the generated class names."""
        return "".join(part.capitalize() for part in self.short.split("_") if part)

    @property
    def blueprint(self) -> str:
        return f"{self.short}_residual"

    @property
    def policy(self) -> str:
        return self.short

    @property
    def sink(self) -> str:
        return self.short

    @property
    def reward_term(self) -> str:
        return f"{self.short}_accuracy_delta"

    @property
    def task(self) -> str:
        return f"{self.short}_stripes"

    @property
    def events_file(self) -> str:
        """The file the sample sink writes in each run directory."""
        return f"{self.short}_events.jsonl"
