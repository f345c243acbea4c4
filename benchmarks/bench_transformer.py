"""Training throughput of GPTHost (run segment by segment) vs a plain PyTorch GPT loop.

Both models have the same architecture and, copied from one another, the same weights; both
train with AdamW on the same random byte batches, in the same process, interleaved round by
round (alternating which goes first) so that load from other processes hits both alike.
Prints a JSON dict: tokens/s of each (median and spread over rounds) and the per-round slowdown
of the segmented host, median and spread. Goal: slowdown ≤ 1.05.

    .venv/bin/python benchmarks/bench_transformer.py [--rounds 41] [--steps 4]
"""

from __future__ import annotations

import argparse
import json
import math
import statistics
import time
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from esper_blueprints_transformer.config import GPTConfig
from esper_blueprints_transformer.host import GPTHost


class PlainGPT(nn.Module):
    """nanoGPT-style monolith: one module, one forward, the same layers as GPTHost."""

    def __init__(self, cfg: GPTConfig) -> None:
        super().__init__()
        self.cfg = cfg
        d = cfg.d_model
        self.tok = nn.Embedding(cfg.vocab_size, d)
        self.pos = nn.Embedding(cfg.context, d)
        self.ln1 = nn.ModuleList(nn.LayerNorm(d) for _ in range(cfg.n_layers))
        self.qkv = nn.ModuleList(nn.Linear(d, 3 * d) for _ in range(cfg.n_layers))
        self.attn_proj = nn.ModuleList(nn.Linear(d, d) for _ in range(cfg.n_layers))
        self.ln2 = nn.ModuleList(nn.LayerNorm(d) for _ in range(cfg.n_layers))
        self.fc = nn.ModuleList(nn.Linear(d, 4 * d) for _ in range(cfg.n_layers))
        self.mlp_proj = nn.ModuleList(nn.Linear(4 * d, d) for _ in range(cfg.n_layers))
        self.ln_f = nn.LayerNorm(d)
        self.head = nn.Linear(d, cfg.vocab_size, bias=False)
        self.head.weight = self.tok.weight

    def forward(self, idx: torch.Tensor) -> torch.Tensor:
        b, t = idx.shape
        h, d = self.cfg.n_heads, self.cfg.d_model
        x = self.tok(idx) + self.pos(torch.arange(t, device=idx.device))
        for i in range(self.cfg.n_layers):
            q, k, v = self.qkv[i](self.ln1[i](x)).view(b, t, 3, h, d // h).permute(2, 0, 3, 1, 4)
            y = F.scaled_dot_product_attention(q, k, v, is_causal=True)
            x = x + self.attn_proj[i](y.transpose(1, 2).reshape(b, t, d))
            x = x + self.mlp_proj[i](F.gelu(self.fc[i](self.ln2[i](x))))
        return self.head(self.ln_f(x))

    def load_from_host(self, host: GPTHost) -> None:
        """Copy GPTHost's weights so both models compute the same function."""
        # The host's submodules by attribute, as GPTHost builds them (nn.Module types them loosely).
        blocks: list[Any] = [m for m in host.modules() if type(m).__name__ == "Block"]
        emb: Any = host.segments[0][0]  # type: ignore[index]
        with torch.no_grad():
            self.tok.weight.copy_(emb.tok.weight)
            self.pos.weight.copy_(emb.pos.weight)
            for i, blk in enumerate(blocks):
                for dst, src in ((self.ln1[i], blk.ln1), (self.qkv[i], blk.attn.qkv),
                                 (self.attn_proj[i], blk.attn.proj), (self.ln2[i], blk.ln2),
                                 (self.fc[i], blk.mlp.fc), (self.mlp_proj[i], blk.mlp.proj)):
                    dst.load_state_dict(src.state_dict())
            final: Any = host.segments[-1]
            self.ln_f.load_state_dict(final.ln.state_dict())


def train_steps(model: nn.Module, opt: torch.optim.Optimizer,
                batches: list[tuple[torch.Tensor, torch.Tensor]]) -> float:
    """Seconds to run ``batches`` as training steps."""
    started = time.perf_counter()
    for x, y in batches:
        opt.zero_grad(set_to_none=True)
        logits = model(x)
        F.cross_entropy(logits.view(-1, logits.size(-1)), y.view(-1)).backward()
        opt.step()
    return time.perf_counter() - started


def spread(values: list[float]) -> dict[str, float]:
    q = statistics.quantiles(values, n=4) if len(values) > 1 else [values[0]] * 3
    return {"median": round(statistics.median(values), 4), "q1": round(q[0], 4), "q3": round(q[2], 4),
            "min": round(min(values), 4), "max": round(max(values), 4)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=41)
    parser.add_argument("--steps", type=int, default=4,
                        help="training steps per model per round (short rounds track load changes)")
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    torch.manual_seed(0)

    cfg = GPTConfig()
    host = GPTHost(cfg)
    plain = PlainGPT(cfg)
    plain.load_from_host(host)
    probe = torch.randint(cfg.vocab_size, (2, cfg.context))
    with torch.no_grad():
        max_diff = (host(probe) - plain(probe)).abs().max().item()
    n_params = sum(p.numel() for p in host.parameters())
    assert n_params == sum(p.numel() for p in plain.parameters())

    models = {"segmented": host, "plain": plain}
    opts = {k: torch.optim.AdamW(m.parameters(), lr=3e-3, weight_decay=0.01) for k, m in models.items()}
    gen = torch.Generator().manual_seed(1)

    def batches() -> list[tuple[torch.Tensor, torch.Tensor]]:
        data = torch.randint(cfg.vocab_size, (args.steps, args.batch_size, cfg.context + 1), generator=gen)
        return [(w[:, :-1].contiguous(), w[:, 1:].contiguous()) for w in data]

    for name, model in models.items():  # warm-up: allocator, thread pool, first-call dispatch
        train_steps(model, opts[name], batches()[:5])

    tokens_per_round = args.steps * args.batch_size * cfg.context
    rates: dict[str, list[float]] = {k: [] for k in models}
    slowdown: list[float] = []
    for r in range(args.rounds):
        data = batches()
        order = ["segmented", "plain"] if r % 2 == 0 else ["plain", "segmented"]
        seconds = {name: train_steps(models[name], opts[name], data) for name in order}
        for name in models:
            rates[name].append(tokens_per_round / seconds[name])
        slowdown.append(seconds["segmented"] / seconds["plain"])

    print(json.dumps({
        "config": {"n_layers": cfg.n_layers, "d_model": cfg.d_model, "n_heads": cfg.n_heads,
                   "context": cfg.context, "batch_size": args.batch_size, "params": n_params,
                   "threads": args.threads, "rounds": args.rounds, "steps_per_round": args.steps,
                   "torch": torch.__version__},
        "same_function_max_abs_diff": max_diff,
        "tokens_per_s": {name: spread(v) for name, v in rates.items()},
        "slowdown_segmented_over_plain": spread(slowdown),
        "slowdown_geomean": round(math.exp(statistics.fmean(math.log(s) for s in slowdown)), 4),
        "goal": "slowdown median <= 1.05",
    }, indent=1))


if __name__ == "__main__":
    main()
