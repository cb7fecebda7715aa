"""The plugin guide's example (examples/markov), installed by entry point and exercised as users would."""

from __future__ import annotations

import re

import pytest
from helpers import EXAMPLES, MARKOV_SOURCE, ROOT, install_markov

from desktop.api import ModelFormatError, TextOutput
from desktop.models.demo import demo_model_dir
from desktop.plugins import Status


def python_blocks(markdown: str) -> list[str]:
    return re.findall(r"```python\n(.*?)```", markdown, flags=re.S)


def test_the_guide_shows_the_example_exactly():
    guide = (ROOT / "docs" / "plugins.md").read_text(encoding="utf-8")
    assert MARKOV_SOURCE in python_blocks(guide)
    toml = (EXAMPLES / "markov" / "pyproject.toml").read_text(encoding="utf-8")
    assert toml in guide
    assert 'markov = "studiolo_markov"' in toml and '"studiolo>=0.2,<0.3"' in toml


@pytest.fixture
def markov(studiolo_site, studiolo_plugins):
    install_markov(studiolo_site)
    manager = studiolo_plugins("markov")
    assert manager.plugins["markov"].status == Status.LOADED
    return manager.generator("text.markov")


def test_writes_the_words_asked_for_streaming_every_one(markov, studiolo_run):
    result = studiolo_run(markov, {"words": 25}, model="demo", seed=3)
    (output,) = result.outputs
    assert isinstance(output, TextOutput) and not output.partial
    assert output.metadata["new_words"] == 25
    assert [p[:2] for p in result.progress] == [(i, 25) for i in range(1, 26)]
    assert "".join(result.previews) == output.text  # empty prompt: the previews are the whole text
    assert demo_model_dir(markov).joinpath("corpus.txt").is_file()


def test_continues_the_prompt(markov, studiolo_run):
    result = studiolo_run(markov, {"prompt": "The sea was", "words": 5}, model="demo", seed=1)
    text = result.outputs[0].text
    assert text.startswith("The sea was ") and len(text.split()) == 3 + 5
    assert "The sea was" + "".join(result.previews) == text


def test_same_seed_same_text_other_seed_other_text(markov, studiolo_run):
    texts = [studiolo_run(markov, {"words": 30}, model="demo", seed=s).outputs[0].text for s in (7, 7, 8)]
    assert texts[0] == texts[1] != texts[2]


def test_cancel_keeps_the_words_written_and_stops_at_once(markov, studiolo_run):
    result = studiolo_run(markov, {"words": 100}, model="demo", seed=2, cancel_after=5)
    assert result.cancelled
    (partial,) = result.outputs
    assert partial.partial and len(partial.text.split()) == 5 + 1  # the 1-word start state + 5 new words
    assert result.progress_after_cancel == 0 and len(result.progress) == 5


def test_order_is_a_load_option(markov, studiolo_run):
    one = studiolo_run(markov, {"words": 3, "order": 1}, model="demo")
    two = studiolo_run(markov, {"words": 3, "order": 2}, model="demo")
    assert (one.handle.order, two.handle.order) == (1, 2)


def test_a_bad_corpus_is_a_clear_model_error(markov, studiolo_run, tmp_path):
    (tmp_path / "corpus.txt").write_bytes(b"\xff\xfe not utf-8 \xff")
    with pytest.raises(ModelFormatError, match="Cannot read the corpus"):
        studiolo_run(markov, {"words": 3}, model=str(tmp_path))
    tiny = tmp_path / "one-word.txt"
    tiny.write_text("hello")
    with pytest.raises(ModelFormatError, match="too few words"):
        studiolo_run(markov, {"words": 3}, model=str(tiny))
