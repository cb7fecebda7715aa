"""A Markov-chain text generator for Studiolo: a complete plugin in one module, no torch needed."""

from __future__ import annotations

import random
from collections import Counter, defaultdict
from dataclasses import dataclass
from pathlib import Path

from desktop.api import Generator, ModelFormatError, TextOutput, hookimpl, param, read_model_text

DEMO_CORPUS = """\
The studio was quiet in the morning. The light fell on the desk and on the paper and on the small brass lamp.
She wrote a line, then another line, and the lines became a page. The page became a story about the sea.
The sea was grey in the morning and blue at noon. The boats went out in the morning and came back at night.
He read the story aloud in the evening. The lamp was warm and the night was long and the story was good.
"""
MAX_CORPUS_BYTES = 20_000_000  # a longer corpus would take gigabytes of memory as a chain


@dataclass(frozen=True)
class MarkovParams:
    prompt: str = param("", prompt=True, multiline=True,
                        help="Words to start from. Empty: start anywhere in the corpus.")
    words: int = param(40, min=1, max=5000, help="How many words to write.")
    temperature: float = param(1.0, min=0.1, max=5.0, step=0.1,
                               help="Above 1, rarer next words come more often; below 1, less often.")
    order: int = param(1, min=1, max=3, load_option=True,
                       help="How many previous words choose the next one (the chain is rebuilt when changed).")


class Chain:
    """Word counts: for each run of `order` words, how often each next word followed it in the corpus."""

    def __init__(self, words: list[str], order: int) -> None:
        self.order = order
        self.next_words: dict[tuple[str, ...], Counter[str]] = defaultdict(Counter)
        for i in range(len(words) - order):
            self.next_words[tuple(words[i:i + order])][words[i + order]] += 1
        self.starts = sorted(self.next_words)


class MarkovGenerator(Generator):
    id = "text.markov"
    name = "Markov chain"
    kind = "text"
    version = "1.0.0"
    description = "Writes text that sounds like its corpus, one word at a time."
    Params = MarkovParams
    default_model = "demo"

    def build_demo_model(self, dest: Path) -> None:
        (dest / "corpus.txt").write_text(DEMO_CORPUS, encoding="utf-8")

    def load(self, model_path, device, options):
        # A "model" is a text file, or a folder holding corpus.txt.
        path = model_path / "corpus.txt" if model_path.is_dir() else model_path
        try:  # a regular UTF-8 file, its size checked first: a named pipe or /dev/zero is refused, never read
            words = read_model_text(path, max_bytes=MAX_CORPUS_BYTES).split()
        except ModelFormatError as exc:
            raise ModelFormatError(f"Cannot read the corpus: {exc.message}",
                                   hint="Choose a UTF-8 text file or a folder with corpus.txt.") from exc
        if len(words) <= options["order"]:
            raise ModelFormatError(f"The corpus {path} has too few words for order {options['order']}.",
                                   hint="Use a longer text or a lower order.")
        return Chain(words, options["order"])

    def generate(self, chain, params, ctx):
        rng = random.Random(ctx.seed)
        written = params.prompt.split()
        state = tuple(written[-chain.order:])
        if state not in chain.next_words:
            state = rng.choice(chain.starts)
            written += state
            ctx.preview(("" if not params.prompt else " ") + " ".join(state))
        new = []
        for step in range(params.words):
            ctx.raise_if_cancelled(partial=[TextOutput(text=" ".join(written), partial=True)])
            counts = chain.next_words.get(state) or chain.next_words[rng.choice(chain.starts)]
            choices = sorted(counts)
            weights = [counts[w] ** (1.0 / params.temperature) for w in choices]
            word = rng.choices(choices, weights)[0]
            written.append(word)
            new.append(word)
            state = tuple(written[-chain.order:])
            ctx.preview(" " + word)
            ctx.progress(step + 1, params.words)
        return [TextOutput(text=" ".join(written), metadata={"new_words": len(new)})]


@hookimpl
def register_generators(register):
    register(MarkovGenerator())
