"""Next-byte prediction tasks on the GPT host.

A training batch is ``batch_size`` windows of ``context + 1`` bytes at random offsets of the
training split, drawn from a generator seeded by (task seed, epoch): the same seed and epoch give
the same batches on any device. Validation uses fixed, non-overlapping windows of the held-out
part of the text after the training split; the test split (the text's last ``test_fraction``)
is held out from controllers and gates and measured once at the end of an episode. Accuracy is
next-byte accuracy over every position; the loss is the mean next-byte cross-entropy in nats,
reported with its perplexity and bits per byte (:meth:`TextTask.loss_metrics`).
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterator, Mapping
from typing import Any

import torch
import torch.nn.functional as F

from esper_blueprints_transformer.host import GPTHost
from esper_blueprints_transformer.tasks import corpus, metrics
from esper_blueprints_transformer.tasks.metrics import unigram_cross_entropy
from esper_blueprints_transformer.tasks.options import (
    DEFAULT_CHARS,
    TextTaskOptions,
    read_pytext_options,
    read_textfile_options,
)
from esper_core.errors import ConfigError, DataError
from esper_core.sdk import TRAINED_BYTES_PER_PARAMETER, require_memory


def epoch_seed(seed: int, epoch: int) -> int:
    """A 63-bit generator seed for (seed, epoch), distinct for distinct pairs in practice."""
    digest = hashlib.blake2b(f"{seed}:{epoch}".encode(), digest_size=8).digest()
    return int.from_bytes(digest, "little") & (2**63 - 1)


class TextTask:
    """A :class:`~esper_core.contracts.protocols.Task` over a byte string."""

    topology = "transformer"

    def __init__(
        self, *, name: str, source: str, data: bytes, seed: int, device: str, options: TextTaskOptions
    ) -> None:
        self.name = name
        self.seed = seed
        self.device = torch.device(device)
        self.options = options
        self.host_config = options.host_config()
        context = options.context
        if options.val_fraction + options.test_fraction >= 0.9:
            raise ConfigError(
                f"task {name!r}: val_fraction {options.val_fraction} + test_fraction "
                f"{options.test_fraction} leave less than 10% of the text for training"
            )
        train, val, test = corpus.split(data, options.val_fraction, options.test_fraction)
        if min(len(train), len(val), len(test)) < context + 1:
            raise DataError(
                f"task {name!r}: {source} has {len(data)} bytes, too short for context {context} "
                f"with val_fraction {options.val_fraction} and test_fraction "
                f"{options.test_fraction}; each split needs at least {context + 1} bytes (give "
                "more text or a smaller context)"
            )
        self.train_bytes, self.val_bytes, self.test_bytes = train, val, test
        # The training bytes are held as int64 token ids (8 bytes each) beside a copy of the bytes.
        require_memory(f"task {name!r}", what=f"the {len(train):,} training bytes of {source}", needed=9 * len(train),
                       remedy="give a smaller text or set chars")
        self._train = torch.frombuffer(bytearray(train), dtype=torch.uint8).long().to(self.device)
        self._offsets = torch.arange(context + 1, device=self.device)
        self.steps_per_epoch = options.steps_per_epoch or max(
            1, len(train) // (options.batch_size * context)
        )
        self._val = self._validation_batches(val)
        self._test = self._validation_batches(test)

    def _validation_batches(self, val: bytes) -> list[tuple[torch.Tensor, torch.Tensor]]:
        context, batch = self.options.context, self.options.batch_size
        n_windows = min((len(val) - 1) // context, batch * self.options.max_val_batches)
        tokens = torch.frombuffer(bytearray(val), dtype=torch.uint8).long()
        starts = torch.arange(n_windows) * context
        windows = tokens[starts[:, None] + torch.arange(context + 1)].to(self.device)
        return [(w[:, :-1], w[:, 1:]) for w in windows.split(batch)]

    def build_host(self) -> GPTHost:
        # Initialise under the task seed without touching the caller's global RNG state, so the
        # baseline and every seeded run of an episode start from the same weights.
        cfg = self.host_config
        require_memory(f"task {self.name!r}", what=f"a host of d_model {cfg.d_model}, {cfg.n_layers} layers and "
                       f"context {cfg.context} ({cfg.parameter_count:,} parameters, trained with Adam)",
                       needed=TRAINED_BYTES_PER_PARAMETER * cfg.parameter_count,
                       remedy="lower d_model, n_layers or context")
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(self.seed)
            host = GPTHost(cfg)
        return host.to(self.device)

    def train_batches(self, *, epoch: int) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        generator = torch.Generator().manual_seed(epoch_seed(self.seed, epoch))
        high = self._train.numel() - self.options.context
        starts = torch.randint(high, (self.steps_per_epoch, self.options.batch_size), generator=generator)
        for row in starts.to(self.device):
            windows = self._train[row[:, None] + self._offsets]
            yield windows[:, :-1], windows[:, 1:]

    def val_batches(self) -> list[tuple[torch.Tensor, torch.Tensor]]:
        return list(self._val)

    def test_batches(self) -> list[tuple[torch.Tensor, torch.Tensor]]:
        """Fixed windows of the held-out test split."""
        return list(self._test)

    def loss(self, output: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        """Mean next-byte cross-entropy over every position of the batch (nats)."""
        return F.cross_entropy(output.reshape(-1, output.size(-1)), target.reshape(-1))

    def loss_metrics(self, loss: float) -> dict[str, float]:
        """Perplexity exp(loss) and bits per byte loss / ln 2 of a mean :meth:`loss`."""
        return metrics.loss_metrics(loss)

    def correct(self, output: torch.Tensor, target: torch.Tensor) -> tuple[torch.Tensor, int]:
        """Positions whose most likely next byte is the true one, and the positions judged."""
        return (output.argmax(dim=-1) == target).sum(), target.numel()

    def correct_per_example(self, output: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        """Each window's fraction of positions predicted right (the gates' paired unit)."""
        return (output.argmax(dim=-1) == target).float().mean(dim=-1)

    def input_contract(self) -> dict[str, Any]:
        """What the host takes, for exports: byte tokens, no normalisation."""
        context = self.options.context
        return {
            "input": {"shape": [context], "dtype": "int64", "max_length": context},
            "normalisation": {
                "from": "text encoded as UTF-8 bytes",
                "steps": f"each byte (0-255) is one token id; feed at most {context} tokens per row",
            },
            "output": {"shape": [context, self.host_config.vocab_size],
                       "meaning": "logits of the next byte at each position"},
            "class_names": None,
        }

    def unigram_baseline(self) -> float:
        """Validation cross-entropy of the training split's byte frequencies (nats/byte)."""
        return unigram_cross_entropy(self.train_bytes, self.val_bytes)


def pytext_task(*, seed: int, device: str, options: Mapping[str, Any]) -> TextTask:
    """Bytes of the Python standard library's own sources (:data:`corpus.STDLIB_SOURCES`)."""
    parsed = read_pytext_options(options=options)
    data = corpus.stdlib_corpus(parsed.chars or DEFAULT_CHARS)
    return TextTask(name="pytext", source="the standard-library corpus", data=data, seed=seed,
                    device=device, options=parsed)


def textfile_task(*, seed: int, device: str, options: Mapping[str, Any]) -> TextTask:
    """Bytes of the UTF-8 text file at option ``path``."""
    parsed = read_textfile_options(options=options)
    if parsed.path is None:
        raise ConfigError("task 'textfile' needs option 'path' (on the command line: --data PATH)")
    data = corpus.read_text_file(parsed.path, chars=parsed.chars)
    return TextTask(name="textfile", source=f"text file {parsed.path!r}", data=data, seed=seed,
                    device=device, options=parsed)
