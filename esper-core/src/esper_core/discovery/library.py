"""The blueprint library file: discovered blueprints any run can load (torch-free).

A versioned JSON document::

    {"format": "esper-blueprint-library", "version": 1, "topology": "cnn",
     "provenance": {"generator": "evolution", "budget": 256, "seed": 0, "tasks": [...], ...},
     "blueprints": [{"name": "disc-evolution-0-00", "tokens": [...], "fitness": 0.91,
                     "performance": {"xor": 1.0, ...}, "params": 600.0, "evaluation": 117}, ...]}

Reading checks everything (format, version, topology, names, and every token sequence against
the grammar) and fails with a :class:`LibraryError` naming the file and the entry.
:func:`library_blueprints` turns the entries into :class:`BlueprintSpec` s without importing
torch: factories compile the tokens when called.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from attrs import field, frozen

from esper_core.contracts.specs import BlueprintSpec
from esper_core.discovery.grammar import GrammarError, check, identity_at_init, parse
from esper_core.errors import ConfigError
from esper_core.files import parse_text, read_input_file, write_atomic
from esper_core.options import got_word, is_number

FORMAT = "esper-blueprint-library"
VERSION = 1
_NAME = re.compile(r"^[a-z][a-z0-9_\-]*$")
#: Bounds on what a library may hold, far above what ``esper discover`` writes (a few dozen
#: entries, a few KiB): a larger file is refused before it is parsed.
MAX_LIBRARY_BYTES = 64 * 1024 * 1024
MAX_ENTRIES = 4096


class LibraryError(ConfigError):
    """A blueprint library file is missing, corrupt or does not fit the run."""


@frozen(kw_only=True)
class LibraryEntry:
    name: str
    tokens: tuple[str, ...] = field(converter=tuple[str, ...])
    fitness: float
    performance: Mapping[str, float] = field(factory=dict)
    params: float = 0.0
    evaluation: int = 0


@frozen(kw_only=True)
class BlueprintLibrary:
    topology: str
    entries: tuple[LibraryEntry, ...] = field(converter=tuple[LibraryEntry, ...])
    provenance: Mapping[str, Any] = field(factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return {
            "format": FORMAT,
            "version": VERSION,
            "topology": self.topology,
            "provenance": dict(self.provenance),
            "blueprints": [
                {"name": e.name, "tokens": list(e.tokens), "fitness": e.fitness, "performance": dict(e.performance),
                 "params": e.params, "evaluation": e.evaluation}
                for e in self.entries
            ],
        }


def write_library(path: Path, library: BlueprintLibrary) -> None:
    """Write ``library`` atomically (a kill mid-write leaves any previous file intact)."""
    _validate(library, str(path))
    write_atomic(path, json.dumps(library.to_dict(), indent=2) + "\n")


def read_library(path: Path) -> BlueprintLibrary:
    """Read and validate a library file; every problem is a LibraryError naming the file."""
    where = str(path)
    raw_bytes = read_input_file(path, label="blueprint library", max_bytes=MAX_LIBRARY_BYTES, error=LibraryError)
    data = parse_text(raw_bytes, json.loads, where=f"blueprint library {where!r}", kind="JSON", error=LibraryError)
    if not isinstance(data, dict) or data.get("format") != FORMAT:
        raise LibraryError(f"{where!r} is not an Esper blueprint library (no \"format\": {FORMAT!r})")
    if data.get("version") != VERSION:
        raise LibraryError(f"blueprint library {where!r} has version {data.get('version')!r}; "
                           f"this Esper reads version {VERSION}")
    raw = data.get("blueprints")
    if not isinstance(raw, list):
        raise LibraryError(f"blueprint library {where!r}: \"blueprints\" must be a list")
    if not raw:
        raise LibraryError(f"blueprint library {where!r} holds no blueprints; a library adds blueprints "
                           "to the catalog, so it needs at least one")
    if len(raw) > MAX_ENTRIES:
        raise LibraryError(f"blueprint library {where!r} holds {len(raw)} blueprints; at most {MAX_ENTRIES} are loaded")
    entries = []
    for i, item in enumerate(raw):
        try:
            entries.append(_read_entry(item))
        except ValueError as exc:
            raise LibraryError(f"blueprint library {where!r}: entry {i} is malformed: {exc}") from None
    provenance = data.get("provenance", {})
    library = BlueprintLibrary(topology=str(data.get("topology")), entries=entries,
                               provenance=provenance if isinstance(provenance, dict) else {})
    _validate(library, where)
    return library


def _number(item: Mapping[str, Any], key: str, default: float | None = None) -> float:
    value = item.get(key, default)
    if value is None:
        raise ValueError(f"it has no {key!r}")
    if not is_number(value):
        raise ValueError(f"{key!r} must be a finite number, got {got_word(value)} {value!r}")
    return float(value)


def _read_entry(item: Any) -> LibraryEntry:
    """One ``"blueprints"`` entry; a wrong one raises ValueError saying what is wrong, in words."""
    if not isinstance(item, dict):
        raise ValueError(f"it must be an object with \"name\", \"tokens\" and \"fitness\", got {got_word(item)}")
    if "name" not in item:
        raise ValueError("it has no 'name'")
    tokens = item.get("tokens")
    if not isinstance(tokens, list):
        got = "nothing" if tokens is None else got_word(tokens)
        raise ValueError(f"'tokens' must be a list of token names, got {got}")
    performance = item.get("performance", {})
    if not isinstance(performance, dict):
        raise ValueError(f"'performance' must be an object mapping task names to numbers, got {got_word(performance)}")
    evaluation = item.get("evaluation", 0)
    if not (is_number(evaluation) and float(evaluation).is_integer()):
        raise ValueError(f"'evaluation' must be a whole number, got {got_word(evaluation)} {evaluation!r}")
    return LibraryEntry(name=item["name"], tokens=tokens, fitness=_number(item, "fitness"),
                        performance={str(k): _number(performance, k) for k in performance},
                        params=_number(item, "params", 0.0), evaluation=int(evaluation))


def _validate(library: BlueprintLibrary, where: str) -> None:
    supported = token_topologies()
    if library.topology not in supported:
        raise LibraryError(f"blueprint library {where!r}: topology {library.topology!r} is not supported; "
                           f"supported: {', '.join(supported) or 'none installed'}")
    seen: set[str] = set()
    for entry in library.entries:
        if not isinstance(entry.name, str) or not _NAME.match(entry.name):
            raise LibraryError(f"blueprint library {where!r}: name {entry.name!r} must be a lower-case "
                               "name (letters, digits, '_' or '-', starting with a letter)")
        if entry.name in seen:
            raise LibraryError(f"blueprint library {where!r}: duplicate blueprint name {entry.name!r}")
        seen.add(entry.name)
        if not all(isinstance(t, str) for t in entry.tokens):
            raise LibraryError(f"blueprint library {where!r}: {entry.name}: tokens must be strings")
        try:
            check(entry.tokens, _slot(library.topology, 8))
        except GrammarError as exc:
            raise LibraryError(f"blueprint library {where!r}: {entry.name}: {exc}") from None


def token_topologies() -> dict[str, tuple[int, ...]]:
    """The installed topologies whose slots take token blueprints, with the extent of the other
    axes of the slot they are checked and compiled for (``TopologySpec.token_spatial``)."""
    from esper_core.discovery.installed import installed_catalog

    return {t.name: t.token_spatial for t in installed_catalog().topologies if t.token_spatial is not None}


def _slot(topology: str, width: int) -> tuple[int, ...]:
    return (width, *token_topologies()[topology])


class LibraryFactory:
    """``factory(width=C)``: compiles the tokens for a slot of width C (torch imported then)."""

    def __init__(self, tokens: Sequence[str], topology: str) -> None:
        self.tokens = tuple(tokens)
        self.topology = topology

    def __call__(self, *, width: int) -> Any:
        from esper_core.discovery.compile import compile_program

        return compile_program(self.tokens, _slot(self.topology, width))

    def param_estimate(self, width: int) -> int:
        return check(self.tokens, _slot(self.topology, width)).params

    def __repr__(self) -> str:
        return f"LibraryFactory({' '.join(self.tokens)!r})"


def library_blueprints(library: BlueprintLibrary, source: str) -> list[BlueprintSpec]:
    """The library's blueprints as specs (no action index: they are appended after the built-in
    catalog, in key order). ``source`` (the file) is recorded in each spec's metadata."""
    generator = library.provenance.get("generator", "unknown")
    specs = []
    for entry in library.entries:
        factory = LibraryFactory(entry.tokens, library.topology)
        specs.append(BlueprintSpec(
            name=entry.name,
            topology=library.topology,
            factory=factory,
            param_estimate=factory.param_estimate,
            description=f"discovered ({generator}, fitness {entry.fitness:.3f}): {' '.join(entry.tokens)}",
            identity_at_init=identity_at_init(parse(entry.tokens)),
            tokens=entry.tokens,
            metadata={"library": source, "fitness": entry.fitness, "provenance": dict(library.provenance)},
        ))
    return specs
