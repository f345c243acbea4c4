"""FlexAttention blueprint: same output as its fallback; the fallback is taken and logged once."""

from __future__ import annotations

import pytest
import torch
from structlog.testing import capture_logs

from esper_blueprints_transformer.blueprints import flex
from esper_blueprints_transformer.blueprints.attention import CausalAttentionSeed


def flex_available() -> bool:
    try:
        flex.load_flex()
    except ImportError:
        return False
    return True


def trained_pair(width: int) -> tuple[flex.FlexAttentionSeed, flex.FlexAttentionSeed]:
    torch.manual_seed(0)
    a = flex.FlexAttentionSeed(width=width)
    with torch.no_grad():
        a.proj.weight.normal_(0.0, 0.1)
    b = flex.FlexAttentionSeed(width=width, prefer_flex=False)
    b.load_state_dict(a.state_dict())
    return a, b


@pytest.mark.skipif(not flex_available(), reason="torch.nn.attention.flex_attention missing")
@pytest.mark.parametrize(("width", "length"), [(16, 1), (16, 7), (64, 64), (48, 33)])
def test_flex_path_matches_fallback(width: int, length: int) -> None:
    a, b = trained_pair(width)
    x = torch.randn(2, length, width)
    with torch.no_grad():
        assert a.uses_flex(x.device, grad=False), "forward-only FlexAttention should work here"
        torch.testing.assert_close(a(x), b(x), rtol=1e-5, atol=1e-5)
    assert not b.uses_flex(x.device, grad=False)


def test_matches_plain_attention_seed() -> None:
    a, _ = trained_pair(32)
    plain = CausalAttentionSeed(width=32)
    plain.load_state_dict(a.state_dict())
    x = torch.randn(2, 11, 32, requires_grad=True)
    torch.testing.assert_close(a(x), plain(x), rtol=1e-5, atol=1e-5)


def test_fallback_when_flex_is_missing_is_logged_once(monkeypatch: pytest.MonkeyPatch) -> None:
    def missing() -> None:
        raise ImportError("no module named torch.nn.attention.flex_attention")

    monkeypatch.setattr(flex, "load_flex", missing)
    a, b = trained_pair(16)
    x = torch.randn(2, 9, 16)
    with capture_logs() as logs, torch.no_grad():
        out1, out2 = a(x), a(x)
    events = [e for e in logs if e["event"] == "flex_attention_unavailable"]
    assert len(events) == 1
    assert events[0]["log_level"] == "warning"
    assert "ImportError" in events[0]["error"] and events[0]["device"] == "cpu"
    assert not a.uses_flex(x.device, grad=False)
    torch.testing.assert_close(out1, b(x).detach())
    torch.testing.assert_close(out2, out1)


def test_failing_backward_falls_back_for_training_only(monkeypatch: pytest.MonkeyPatch) -> None:
    if not flex_available():
        pytest.skip("torch.nn.attention.flex_attention missing")
    real_flex, create_block_mask = flex.load_flex()

    class NoBackward(torch.autograd.Function):
        @staticmethod
        def forward(ctx: object, t: torch.Tensor) -> torch.Tensor:
            return t.clone()

        @staticmethod
        def backward(ctx: object, g: torch.Tensor) -> torch.Tensor:
            raise NotImplementedError("backward not supported on this device")

    def forward_only_flex(q: torch.Tensor, *args: object, **kwargs: object) -> torch.Tensor:
        return NoBackward.apply(real_flex(q, *args, **kwargs))

    monkeypatch.setattr(flex, "load_flex", lambda: (forward_only_flex, create_block_mask))
    a, b = trained_pair(16)
    x = torch.randn(2, 9, 16, requires_grad=True)
    with capture_logs() as logs:
        a(x).sum().backward()
        a(x).sum().backward()
        with torch.no_grad():
            a(x)
    events = [e for e in logs if e["event"] == "flex_attention_unavailable"]
    assert [e["mode"] for e in events] == ["training"]
    assert a.uses_flex(x.device, grad=False) and not a.uses_flex(x.device, grad=True)
    grads = [p.grad for p in a.parameters()]
    b(x).sum().backward()
    for ga, gb in zip(grads, (p.grad for p in b.parameters()), strict=True):
        torch.testing.assert_close(ga, 2 * gb, rtol=1e-5, atol=1e-6)  # a ran backward twice
