"""Text tasks: determinism, batches, metrics, option validation, bad files, learnability."""

from __future__ import annotations

import math
from pathlib import Path

import pytest
import torch

from esper_blueprints_transformer import plugin
from esper_blueprints_transformer.host import GPTHost
from esper_blueprints_transformer.tasks import corpus
from esper_blueprints_transformer.tasks.metrics import bits_per_char, perplexity, unigram_cross_entropy
from esper_blueprints_transformer.tasks.options import PYTEXT_KEYS, TEXTFILE_KEYS
from esper_blueprints_transformer.tasks.text import TextTask, epoch_seed, pytext_task, textfile_task
from esper_core.contracts.protocols import Task
from esper_core.errors import ConfigError, DataError

SMALL = {"chars": 20_000, "steps_per_epoch": 3, "batch_size": 4, "context": 16}


@pytest.fixture(scope="module")
def task() -> TextTask:
    return pytext_task(seed=0, device="cpu", options=SMALL)


def test_registered_factories_build_tasks(tmp_path: Path) -> None:
    specs = {s.name: s for s in plugin.esper_register_tasks()}
    built = specs["pytext"].factory(seed=1, device="cpu", options=SMALL)
    assert isinstance(built, Task) and built.name == "pytext" and built.topology == "transformer"
    text = tmp_path / "t.txt"
    text.write_text("hello world, hello esper. " * 40)
    other = specs["textfile"].factory(seed=1, device="cpu", options={"path": str(text), "context": 8})
    assert other.name == "textfile"


def test_default_pytext_options() -> None:
    task = pytext_task(seed=0, device="cpu", options={})
    assert task.options.chars == 262_144 and task.steps_per_epoch == 50
    assert len(task.train_bytes) + len(task.val_bytes) + len(task.test_bytes) == len(
        corpus.stdlib_corpus(262_144))
    x, y = next(iter(task.train_batches(epoch=0)))
    assert x.shape == y.shape == (32, 64)
    assert isinstance(task.build_host(), GPTHost)


def test_batches_are_shifted_windows_of_the_text(task: TextTask) -> None:
    for x, y in task.train_batches(epoch=0):
        assert x.shape == y.shape == (4, 16) and x.dtype == torch.long
        assert torch.equal(x[:, 1:], y[:, :-1])
        text = task.train_bytes
        for row_x, row_y in zip(x.tolist(), y.tolist(), strict=True):
            assert bytes(row_x + row_y[-1:]) in text
    assert sum(1 for _ in task.train_batches(epoch=0)) == 3


def test_train_batches_deterministic_per_seed_and_epoch(task: TextTask) -> None:
    def first(t: TextTask, epoch: int) -> torch.Tensor:
        return torch.cat([x for x, _ in t.train_batches(epoch=epoch)])

    again = pytext_task(seed=0, device="cpu", options=SMALL)
    other_seed = pytext_task(seed=1, device="cpu", options=SMALL)
    assert torch.equal(first(task, 2), first(again, 2))
    assert not torch.equal(first(task, 2), first(task, 3))
    assert not torch.equal(first(task, 2), first(other_seed, 2))
    assert len({epoch_seed(s, e) for s in range(20) for e in range(50)}) == 1000


def test_validation_is_fixed_and_held_out(task: TextTask) -> None:
    a, b = task.val_batches(), task.val_batches()
    assert len(a) == len(b) >= 1
    assert all(torch.equal(xa, xb) for (xa, _), (xb, _) in zip(a, b, strict=True))
    assert sum(x.size(0) for x, _ in a) <= task.options.batch_size * task.options.max_val_batches
    first = bytes(a[0][0][0].tolist())
    assert task.val_bytes.startswith(first)


def test_test_split_is_the_held_out_tail(task: TextTask) -> None:
    batches = task.test_batches()
    assert batches and task.test_bytes.startswith(bytes(batches[0][0][0].tolist()))
    assert task.test_bytes not in task.train_bytes + task.val_bytes
    x, y = batches[0]
    per_window = task.correct_per_example(torch.nn.functional.one_hot(y, 256).float(), y)
    assert per_window.shape == (x.size(0),) and bool((per_window == 1).all())


def test_splits_that_leave_no_training_text_are_refused() -> None:
    with pytest.raises(ConfigError, match="less than 10% of the text for training"):
        pytext_task(seed=0, device="cpu", options={**SMALL, "val_fraction": 0.5, "test_fraction": 0.45})


def test_build_host_is_seeded_and_leaves_global_rng_alone(task: TextTask) -> None:
    torch.manual_seed(123)
    before = torch.get_rng_state()
    h1, h2 = task.build_host(), task.build_host()
    assert torch.equal(torch.get_rng_state(), before)
    for p1, p2 in zip(h1.parameters(), h2.parameters(), strict=True):
        assert torch.equal(p1, p2)
    h3 = pytext_task(seed=5, device="cpu", options=SMALL).build_host()
    assert not torch.equal(next(h1.parameters()), next(h3.parameters()))
    assert h1.config.context == 16


def test_loss_and_correct(task: TextTask) -> None:
    target = torch.tensor([[1, 2, 3]])
    logits = torch.full((1, 3, 256), -10.0)
    logits[0, 0, 1] = logits[0, 1, 2] = logits[0, 2, 7] = 10.0
    count, n = task.correct(logits, target)
    assert isinstance(count, torch.Tensor) and count.item() == 2 and n == 3
    uniform = torch.zeros(2, 5, 256)
    assert task.loss(uniform, torch.zeros(2, 5, dtype=torch.long)).item() == pytest.approx(math.log(256))


def test_metrics() -> None:
    assert perplexity(0.0) == 1.0
    assert perplexity(math.log(256)) == pytest.approx(256)
    assert bits_per_char(math.log(2)) == pytest.approx(1.0)
    assert bits_per_char(math.log(256)) == pytest.approx(8.0)
    assert perplexity(1e4) == math.inf  # a diverged loss is reported, not an OverflowError
    assert unigram_cross_entropy(b"ab" * 100, b"ab") < unigram_cross_entropy(b"ab" * 100, b"cd")
    with pytest.raises(ValueError, match="empty"):
        unigram_cross_entropy(b"abc", b"")


# ---------------------------------------------------------------- options


def test_unknown_option_names_key_and_allowed() -> None:
    with pytest.raises(ConfigError) as info:
        pytext_task(seed=0, device="cpu", options={"batchsize": 8})
    message = str(info.value)
    assert "'batchsize'" in message and "did you mean 'batch_size'" in message
    assert all(key in message for key in PYTEXT_KEYS)
    # 'path' is textfile's option: pytext says it does not apply, not that it is unknown.
    with pytest.raises(ConfigError, match="^task 'pytext': option 'path' does not apply here; allowed options: "
                                          "batch_size"):
        pytext_task(seed=0, device="cpu", options={"path": "x.txt"})
    assert "path" in TEXTFILE_KEYS


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"batch_size": 0}, "^task 'pytext' option 'batch_size' = 0 is invalid; expected an integer ≥ 1$"),
        ({"context": "64"},
         "^task 'pytext' option 'context' = '64' is invalid; expected an integer ≥ 1, got a string$"),
        ({"val_fraction": 1.0}, r"option 'val_fraction' = 1.0 is invalid; expected a finite number in \(0, 1\)$"),
        ({"d_model": 30}, "^task 'pytext': d_model = 30 is not divisible by n_heads"),
        ({"steps_per_epoch": -1}, "option 'steps_per_epoch' = -1 is invalid; expected an integer ≥ 1$"),
        ({"dropout": 2.0}, r"^task 'pytext': dropout = 2.0 is invalid; expected a finite number in \[0, 1\)$"),
    ],
)
def test_bad_option_values(options: dict[str, object], message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        pytext_task(seed=0, device="cpu", options=options)


def test_textfile_needs_a_path() -> None:
    with pytest.raises(ConfigError, match="needs option 'path'"):
        textfile_task(seed=0, device="cpu", options={})
    with pytest.raises(ConfigError, match="path"):
        textfile_task(seed=0, device="cpu", options={"path": "  "})


# ---------------------------------------------------------------- text files


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (b"", "is empty"),
        (b" \n\t\n", "is empty"),
        (b"hello\x00world" * 20, "looks binary \\(NUL byte at offset 5\\)"),
        (b"caf\xe9 au lait " * 20, "not valid UTF-8 \\(bad byte at offset 3\\)"),
        (b"short text", "too short"),
    ],
)
def test_textfile_refuses_bad_files(tmp_path: Path, content: bytes, message: str) -> None:
    path = tmp_path / "input.txt"
    path.write_bytes(content)
    with pytest.raises(DataError, match=message) as info:
        textfile_task(seed=0, device="cpu", options={"path": str(path)})
    assert "input.txt" in str(info.value)


def test_textfile_refuses_missing_and_directories(tmp_path: Path) -> None:
    with pytest.raises(DataError, match="does not exist"):
        textfile_task(seed=0, device="cpu", options={"path": str(tmp_path / "nope.txt")})
    with pytest.raises(DataError, match=r"not a regular file \(a directory\)"):
        textfile_task(seed=0, device="cpu", options={"path": str(tmp_path)})


def test_textfile_refuses_a_named_pipe_without_waiting_on_it(tmp_path: Path) -> None:
    import os

    pipe = tmp_path / "pipe.txt"
    os.mkfifo(pipe)  # opening it would wait for a writer forever
    with pytest.raises(DataError, match=r"text file '.*pipe.txt' is not a regular file \(a named pipe\)"):
        textfile_task(seed=0, device="cpu", options={"path": str(pipe)})


def test_textfile_reads_utf8_and_caps(tmp_path: Path) -> None:
    path = tmp_path / "poem.txt"
    path.write_text("Ünïcødé → fine. " * 100, encoding="utf-8")
    task = textfile_task(seed=0, device="cpu", options={"path": str(path), "context": 8})
    assert task.train_bytes + task.val_bytes + task.test_bytes == path.read_bytes()
    capped = corpus.read_text_file(path, chars=10)
    assert capped.decode("utf-8") == "Ünïcødé → "


def test_textfile_with_chars_reads_only_what_it_needs(tmp_path: Path) -> None:
    path = tmp_path / "head.txt"
    # 4 bytes per character at most: what lies past 4 × chars bytes is never read or checked.
    path.write_bytes("a€€€€".encode() + b"\x00\xff" * 1000)
    assert corpus.read_text_file(path, chars=2).decode("utf-8") == "a€"  # its 8 bytes cut the third €
    assert corpus.read_text_file(path, chars=3).decode("utf-8") == "a€€"
    path.write_bytes("é".encode() * 3)
    assert corpus.read_text_file(path, chars=5).decode("utf-8") == "ééé"
    path.write_bytes("é".encode() * 3 + b"\xc3")  # cut inside a character at the end of the file
    with pytest.raises(DataError, match="not valid UTF-8 \\(bad byte at offset 6\\)"):
        corpus.read_text_file(path, chars=5)


def test_textfile_over_the_cap_needs_chars(tmp_path: Path) -> None:
    path = tmp_path / "huge.txt"
    with path.open("wb") as file:  # sparse: no disk space, and never read
        file.truncate(corpus.MAX_TEXT_FILE_BYTES + 1)
    with pytest.raises(DataError, match=f"is {corpus.MAX_TEXT_FILE_BYTES + 1} bytes, over the 256 MiB read whole; "
                                        "use --task-option chars=N") as info:
        corpus.read_text_file(path)
    assert "huge.txt" in str(info.value) and "\n" not in str(info.value)


def test_stdlib_corpus_is_deterministic_and_capped(tmp_path: Path) -> None:
    assert corpus.stdlib_corpus(5_000) == corpus.stdlib_corpus(5_000)
    assert len(corpus.stdlib_corpus(5_000).decode("utf-8")) == 5_000
    assert list(corpus.STDLIB_SOURCES) == sorted(corpus.STDLIB_SOURCES)
    (tmp_path / "abc.py").write_text("x = 1\n")
    (tmp_path / "bisect.py").write_text("y = 2\n")
    assert corpus.stdlib_corpus(100, root=tmp_path) == b"x = 1\n\ny = 2\n"
    with pytest.raises(DataError, match="no Python standard-library sources found"):
        corpus.stdlib_corpus(100, root=tmp_path / "empty")


# ---------------------------------------------------------------- learnability


def evaluate(task: TextTask, host: torch.nn.Module) -> tuple[float, float]:
    host.eval()
    loss_sum, correct, n = 0.0, 0, 0
    with torch.no_grad():
        for x, y in task.val_batches():
            out = host(x)
            loss_sum += task.loss(out, y).item() * y.numel()
            c, k = task.correct(out, y)
            correct, n = correct + int(c), n + k
    host.train()
    return loss_sum / n, correct / n


def test_short_training_beats_the_unigram_baseline() -> None:
    task = pytext_task(seed=0, device="cpu",
                       options={"chars": 60_000, "steps_per_epoch": 60, "batch_size": 16})
    host = task.build_host()
    optimizer = torch.optim.AdamW(host.parameters(), lr=3e-3, weight_decay=0.01)
    initial, _ = evaluate(task, host)
    for x, y in task.train_batches(epoch=0):
        optimizer.zero_grad(set_to_none=True)
        task.loss(host(x), y).backward()
        optimizer.step()
    loss, accuracy = evaluate(task, host)
    baseline = task.unigram_baseline()
    assert initial == pytest.approx(math.log(256), abs=0.25)  # near-uniform at init
    assert loss < baseline - 0.05, (loss, baseline)
    assert accuracy > 0.2


def test_text_tasks_report_perplexity_and_bits_per_byte_of_a_loss(task: TextTask) -> None:
    assert task.loss_metrics(math.log(256)) == pytest.approx({"perplexity": 256.0, "bits_per_byte": 8.0})
    assert task.loss_metrics(0.0) == {"perplexity": 1.0, "bits_per_byte": 0.0}


def test_input_contract_is_byte_tokens(task: TextTask) -> None:
    contract = task.input_contract()
    context = task.options.context
    assert contract["input"]["shape"] == [context] and contract["input"]["dtype"] == "int64"
    assert contract["output"]["shape"] == [context, 256] and contract["class_names"] is None
    x, _ = task.val_batches()[0]
    assert list(x.shape[1:]) == contract["input"]["shape"] and x.dtype == torch.int64
    assert "UTF-8 bytes" in contract["normalisation"]["from"]


def test_a_host_or_text_beyond_memory_is_refused_naming_the_options(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from esper_core import memory

    options = {"chars": 4096, "d_model": 32, "n_heads": 2}
    task = pytext_task(seed=0, device="cpu", options=options)
    needed = 16 * task.host_config.parameter_count
    monkeypatch.setattr(memory, "available_memory", lambda: needed - 1)
    with pytest.raises(ConfigError, match=r"^task 'pytext': a host of d_model 32, 2 layers and context 64 "
                                          r"\(\d[\d,]* parameters, trained with Adam\) would need about .*; "
                                          r"lower d_model, n_layers or context$"):
        task.build_host()
    monkeypatch.setattr(memory, "available_memory", lambda: needed)
    task.build_host()
    text = tmp_path / "t.txt"
    text.write_text("abcdefgh" * 500)
    monkeypatch.setattr(memory, "available_memory", lambda: 1000)
    with pytest.raises(ConfigError, match=r"^task 'textfile': the 3,200 training bytes of .* would need about "
                                          r"28\.1 KiB of memory, .*; give a smaller text or set chars$"):
        textfile_task(seed=0, device="cpu", options={"path": str(text)})
