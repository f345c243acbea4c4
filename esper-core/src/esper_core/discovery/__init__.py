"""Blueprint discovery (DESIGN §9): the token grammar, the Crucible and the search baselines.

Importing this package is cheap and torch-free; the grammar (:mod:`.grammar`), the library file
(:mod:`.library`) and the vocabulary (:mod:`.tokens`) need no torch. Compiling, training and
searching (:mod:`.compile`, :mod:`.batched`, :mod:`.crucible`, :mod:`.search`) import it.
"""

from esper_core.discovery.grammar import CheckedProgram, GrammarError, Program, check, parse, to_tokens

__all__ = ["CheckedProgram", "GrammarError", "Program", "check", "parse", "to_tokens"]
