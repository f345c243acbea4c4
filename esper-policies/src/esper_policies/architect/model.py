"""Token decoders over the blueprint vocabulary: a GRU and a small causal transformer.

Both read ``BOS t₁ … t_k`` and give logits over ``vocabulary + EOS`` at every position; sampling
feeds back each drawn token until EOS or the grammar's length limit.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

from esper_core.sdk import MAX_TOKENS, VOCABULARY

BOS = "<bos>"
EOS = "<eos>"
#: Input symbols: BOS then the grammar's tokens; outputs: the grammar's tokens then EOS.
INPUTS: tuple[str, ...] = (BOS, *VOCABULARY)
OUTPUTS: tuple[str, ...] = (*VOCABULARY, EOS)
INPUT_INDEX = {t: i for i, t in enumerate(INPUTS)}
OUTPUT_INDEX = {t: i for i, t in enumerate(OUTPUTS)}
EOS_INDEX = OUTPUT_INDEX[EOS]


class GRUDecoder(nn.Module):
    def __init__(self, hidden: int = 64) -> None:
        super().__init__()
        self.embed = nn.Embedding(len(INPUTS), hidden)
        self.rnn = nn.GRU(hidden, hidden, batch_first=True)
        self.out = nn.Linear(hidden, len(OUTPUTS))

    def forward(self, inputs: Tensor) -> Tensor:
        """``inputs`` (B, L) input indices → logits (B, L, |OUTPUTS|)."""
        h, _ = self.rnn(self.embed(inputs))
        return self.out(h)

    def step(self, token: Tensor, state: Tensor | None) -> tuple[Tensor, Tensor]:
        h, state = self.rnn(self.embed(token[:, None]), state)
        return self.out(h[:, 0]), state


class TransformerDecoder(nn.Module):
    """A causal transformer (decoder-only, as in GPT) over at most MAX_TOKENS + 1 positions."""

    def __init__(self, hidden: int = 64, layers: int = 2, heads: int = 4) -> None:
        super().__init__()
        self.embed = nn.Embedding(len(INPUTS), hidden)
        self.position = nn.Parameter(torch.zeros(MAX_TOKENS + 1, hidden))
        layer = nn.TransformerEncoderLayer(hidden, heads, 4 * hidden, dropout=0.0, batch_first=True)
        self.body = nn.TransformerEncoder(layer, layers, enable_nested_tensor=False)
        self.out = nn.Linear(hidden, len(OUTPUTS))

    def forward(self, inputs: Tensor) -> Tensor:
        length = inputs.shape[1]
        mask = nn.Transformer.generate_square_subsequent_mask(length)
        return self.out(self.body(self.embed(inputs) + self.position[:length], mask=mask, is_causal=True))

    def step(self, token: Tensor, state: Tensor | None) -> tuple[Tensor, Tensor]:
        # No cache: the prefix is at most 33 tokens, so re-reading it is cheap and exact.
        prefix = token[:, None] if state is None else torch.cat([state, token[:, None]], 1)
        return self.forward(prefix)[:, -1], prefix


DECODERS = {"gru": GRUDecoder, "transformer": TransformerDecoder}


def encode(sequences: list[tuple[str, ...]]) -> tuple[Tensor, Tensor, Tensor]:
    """Teacher-forcing tensors: inputs ``BOS t…`` (B, L), targets ``t… EOS`` (B, L) and a mask
    of real positions. A sequence at the length limit has no EOS target (none was drawn)."""
    length = min(MAX_TOKENS, max(len(s) for s in sequences)) + 1
    inputs = torch.zeros(len(sequences), length, dtype=torch.long)
    targets = torch.full((len(sequences), length), EOS_INDEX, dtype=torch.long)
    mask = torch.zeros(len(sequences), length, dtype=torch.bool)
    for i, seq in enumerate(sequences):
        seq = seq[:MAX_TOKENS]
        inputs[i, 0] = INPUT_INDEX[BOS]
        for j, tok in enumerate(seq):
            if j + 1 < length:
                inputs[i, j + 1] = INPUT_INDEX[tok]
            targets[i, j] = OUTPUT_INDEX[tok]
        n = len(seq) + (1 if len(seq) < MAX_TOKENS else 0)
        mask[i, :n] = True
    return inputs, targets, mask


@torch.no_grad()
def sample(model: GRUDecoder | TransformerDecoder, n: int, generator: torch.Generator,
           temperature: float = 1.0) -> list[tuple[str, ...]]:
    """Draw ``n`` sequences (without EOS), each at most MAX_TOKENS tokens long."""
    token = torch.full((n,), INPUT_INDEX[BOS], dtype=torch.long)
    state = None
    drawn = torch.empty(n, MAX_TOKENS, dtype=torch.long)
    done = torch.zeros(n, dtype=torch.bool)
    lengths = torch.full((n,), MAX_TOKENS, dtype=torch.long)
    for t in range(MAX_TOKENS):
        logits, state = model.step(token, state)
        choice = torch.multinomial(torch.softmax(logits / temperature, -1), 1, generator=generator)[:, 0]
        ended = (choice == EOS_INDEX) & ~done
        lengths[ended] = t
        done |= ended
        drawn[:, t] = choice
        if bool(done.all()):
            break
        # Feed the drawn token back (EOS rows feed anything: they are cut at their length).
        token = torch.where(choice == EOS_INDEX, torch.zeros_like(choice), choice + 1)
    out = []
    for i in range(n):
        out.append(tuple(OUTPUTS[j] for j in drawn[i, : int(lengths[i])].tolist()))
    return out
