"""The built-in text generator (``text.transformers``) on a tiny random-weight GPT-2 built once per session:
streaming, stop sequences, limits, cancel, failures, chat templates, truncation, seeds, bad input, and the way in
through the entry point, the engine and the command line."""

from __future__ import annotations

import shutil

import pytest
import torch_plugin
from helpers import run_cli, run_python

from desktop.api import GenerationError, LoadOptions, ModelFormatError, ParamError, TextOutput, to_json
from desktop.testing import run_generator
from plugins.text.demo import build_tiny_lm
from plugins.text.generator import TextModel, TransformersTextGenerator
from plugins.text.streaming import TextAssembler, TokenRelay

GEN = TransformersTextGenerator()
GREEDY = {"prompt": "The studio was quiet", "temperature": 0.0, "repetition_penalty": 1.0, "max_new_tokens": 24}
WAIT = 60_000  # ms: a safety net only; every wait ends on a signal


def load(path, allow_pickle=False, dtype="auto") -> TextModel:
    return GEN.load(path, "cpu", LoadOptions({"dtype": dtype}, allow_pickle=allow_pickle))


@pytest.fixture(scope="module")
def lm(tiny_lm) -> TextModel:
    """The tiny model, loaded once for the module."""
    return load(tiny_lm)


def run(handle, seed=1, cancel_after=None, **params):
    return run_generator(GEN, {**GREEDY, **params}, handle=handle, seed=seed, cancel_after=cancel_after)


def direct(handle, prompt_ids, seed=None, **kwargs) -> tuple[list[int], str]:
    """transformers alone: ``model.generate`` without streaming; the new token ids and their text."""
    import torch

    if seed is not None:
        torch.manual_seed(seed)
    ids = torch.tensor([prompt_ids])
    out = handle.model.generate(ids, attention_mask=torch.ones_like(ids), pad_token_id=0, **kwargs)
    new = out[0, ids.shape[1]:].tolist()
    return new, handle.tokenizer.decode(new, skip_special_tokens=True)


def prompt_ids(handle, text=GREEDY["prompt"]) -> list[int]:
    return handle.tokenizer(text)["input_ids"]


@pytest.fixture
def forwards(lm):
    """Counts the model's forward passes (one per generated token)."""
    calls = []
    hook = lm.model.register_forward_hook(lambda *args: calls.append(1))
    yield calls
    hook.remove()


# -------------------------------------------------------------------------------------------- streaming


def test_the_stream_is_exactly_what_transformers_writes_without_streaming(lm):
    result = run(lm)
    (output,) = result.outputs
    new, text = direct(lm, prompt_ids(lm), max_new_tokens=24, do_sample=False)
    assert len(new) == 24 and len(set(new)) > 8  # varied text: the comparison means something
    assert output.text == text
    assert "".join(result.previews) == output.text and len(result.previews) > 10  # streamed in many chunks
    assert [p[:2] for p in result.progress] == [(i, 24) for i in range(1, 25)]  # a report per token
    assert {k: v for k, v in output.metadata.items() if k != "seed"} == {
        "mode": "continue", "prompt_tokens": len(prompt_ids(lm)), "new_tokens": 24, "truncated_tokens": 0,
        "stopped_by": "max_tokens"}
    assert isinstance(output.metadata["seed"], int)  # the panel records it in the draft's provenance
    assert result.warnings == []
    penalised = run(lm, repetition_penalty=2.0).outputs[0].text  # the sampling settings reach transformers
    assert penalised == direct(lm, prompt_ids(lm), max_new_tokens=24, do_sample=False, repetition_penalty=2.0)[1]
    assert penalised != text


def test_max_new_tokens_is_respected(lm, forwards):
    result = run(lm, max_new_tokens=7)
    assert result.outputs[0].metadata["new_tokens"] == 7 and result.outputs[0].metadata["stopped_by"] == "max_tokens"
    assert len(forwards) == 7 and len(result.progress) == 7
    assert result.outputs[0].text == run(lm).outputs[0].text[:len(result.outputs[0].text)]  # greedy: a prefix


def test_the_models_end_token_ends_the_text(lm, monkeypatch):
    new, _ = direct(lm, prompt_ids(lm), max_new_tokens=24, do_sample=False)
    at = next(i for i in range(3, 24) if new[i] not in new[:i])  # a token the model writes first at step i + 1
    monkeypatch.setattr(lm.model.generation_config, "eos_token_id", [new[at]])
    (output,) = run(lm).outputs
    assert output.metadata["stopped_by"] == "eos" and output.metadata["new_tokens"] == at + 1
    assert output.text == lm.tokenizer.decode(new[:at + 1])


# ---------------------------------------------------------------------------------------- stop sequences


def test_a_stop_sequence_ends_the_text_before_it_and_none_of_it_is_streamed(lm, forwards):
    full = run(lm, max_new_tokens=40).outputs[0].text
    forwards.clear()
    start = len(full) // 2
    stop = full[start:start + 4]
    first = full.index(stop)
    result = run(lm, max_new_tokens=40, stop=["never written", stop])
    (output,) = result.outputs
    assert output.text == full[:first] and stop not in output.text
    assert "".join(result.previews) == output.text  # the stop text, though written, was never streamed
    assert output.metadata["stopped_by"] == "stop_sequence"
    assert output.metadata["new_tokens"] == len(forwards) < 40  # generation stopped there
    earlier = full[first // 2:first // 2 + 3]
    assert run(lm, max_new_tokens=40, stop=[stop, earlier]).outputs[0].text == full[:full.index(earlier)]
    unmatched = run(lm, max_new_tokens=40, stop=["\u2603 never"]).outputs[0]
    assert unmatched.text == full and unmatched.metadata["stopped_by"] == "max_tokens"


def test_text_that_could_start_a_stop_sequence_is_held_back_until_decided():
    def decode(ids):
        return "".join(chr(i) for i in ids)

    assembler = TextAssembler(decode, stops=["XYZ"])
    assert [assembler.add(ord(c)) for c in "abXY"] == ["a", "b", "", ""]  # "XY" may be the start of "XYZ"
    assert assembler.add(ord("c")) == "XYc"  # it was not: released with the next character
    assert [assembler.add(ord(c)) for c in "dXYZe"] == ["d", "", "", "", ""]
    assert assembler.stopped and assembler.emitted == "abXYcd" and assembler.finish() == ""
    held = TextAssembler(decode, stops=["XYZ"])
    assert [held.add(ord(c)) for c in "aXY"] == ["a", "", ""] and held.finish() == "XY"  # the end decides
    words = ["one ", "HALT two STOP", " three"]
    both = TextAssembler(lambda ids: "".join(words[i] for i in ids), stops=["STOP", "HALT"])
    assert [both.add(i) for i in range(3)] == ["one ", "", ""]  # two stops in one token: the first in the text wins


def test_a_character_split_across_tokens_is_streamed_once_complete(lm):
    tokenizer = lm.tokenizer
    ids = tokenizer("a€b")["input_ids"]
    assert len(ids) >= 5  # "€" is three byte tokens in the tiny vocabulary

    assembler = TextAssembler(lambda t: tokenizer.decode(t, skip_special_tokens=True))
    chunks = [assembler.add(i) for i in ids] + [assembler.finish()]
    assert [c for c in chunks if c] == ["a", "€", "b"]


# ----------------------------------------------------------------------------------------------- cancel


def test_cancel_mid_stream_keeps_the_text_so_far_and_stops_within_a_token(lm, forwards):
    full = run(lm, max_new_tokens=40).outputs[0].text
    forwards.clear()
    result = run(lm, max_new_tokens=40, cancel_after=5)
    assert result.cancelled and result.progress_after_cancel == 0
    assert len(forwards) == 5  # no token computed after the cancel (on a GPU's deferred stop check: one)
    (partial,) = result.outputs
    assert isinstance(partial, TextOutput) and partial.partial and partial.metadata["stopped_by"] == "cancelled"
    assert partial.text == "".join(result.previews) and full.startswith(partial.text) and partial.text
    early = run(lm, max_new_tokens=40, cancel_after=1)
    assert early.cancelled and len(early.progress) == 1


def test_each_token_is_reported_before_the_next_and_a_cancel_made_meanwhile_stops_at_that_token():
    cancel = []
    reports = []
    relay = TokenRelay(TextAssembler(lambda ids: "".join(chr(i) for i in ids)), cancelled=lambda: bool(cancel))

    def report(chunk, tokens):
        reports.append((chunk, tokens))
        if tokens == 2:
            cancel.append(1)  # the user cancels while token 2 is being reported

    relay.report = report
    assert [relay.step(ord("a")), relay.step(ord("b"))] == [False, True] and relay.was_cancelled
    assert reports == [("a", 1), ("b", 2)]
    assert relay.step(ord("c")) is True and len(reports) == 2  # and nothing more is taken


# ------------------------------------------------------------------------------------------------- chat


def test_chat_sends_the_chat_templates_output_with_system_prompt_and_history(lm, monkeypatch):
    sent = []
    original = lm.model.generate

    def recording(*args, **kwargs):
        sent.append(kwargs["input_ids"][0].tolist())
        return original(*args, **kwargs)

    monkeypatch.setattr(lm.model, "generate", recording)
    result = run(lm, mode="chat", prompt="And a haiku?", system_prompt="You are terse.",
                 history=["Write a line.", "The sea is grey."], max_new_tokens=6)
    messages = [{"role": "system", "content": "You are terse."}, {"role": "user", "content": "Write a line."},
                {"role": "assistant", "content": "The sea is grey."}, {"role": "user", "content": "And a haiku?"}]
    expected = lm.tokenizer.apply_chat_template(messages, add_generation_prompt=True, tokenize=True)["input_ids"]
    assert sent == [list(expected)]
    assert lm.tokenizer.decode(sent[0]) == ("<|system|>\nYou are terse.<|end|>\n<|user|>\nWrite a line.<|end|>\n"
                                            "<|assistant|>\nThe sea is grey.<|end|>\n<|user|>\nAnd a haiku?<|end|>\n"
                                            "<|assistant|>\n")
    (output,) = result.outputs
    assert output.metadata["mode"] == "chat" and output.metadata["prompt_tokens"] == len(expected)
    assert output.text == "".join(result.previews) and output.metadata["new_tokens"] == 6


def test_chat_mistakes_are_clear(lm, tiny_lm, tmp_path):
    with pytest.raises(ParamError, match="'prompt': '' — chat mode needs a message to answer") as info:
        run(lm, mode="chat", prompt="")
    assert "continue mode" in info.value.hint
    with pytest.raises(ParamError, match="'history'.*an even number of entries"):
        run(lm, mode="chat", prompt="hi", history=["a question without its answer"])
    plain = tmp_path / "plain"
    shutil.copytree(tiny_lm, plain)
    (plain / "chat_template.jinja").unlink()
    no_template = load(plain)
    assert no_template.tokenizer.chat_template is None
    with pytest.raises(ParamError, match="'mode': 'chat' — this model has no chat template") as info:
        run(no_template, mode="chat", prompt="hi")
    assert "Use continue mode" in info.value.hint
    assert run(no_template, prompt="hi", max_new_tokens=3).outputs[0].metadata["new_tokens"] == 3
    refusing = load(plain)
    refusing.tokenizer.chat_template = "{{ raise_exception('System role not supported') }}"
    with pytest.raises(GenerationError, match="chat template refused the conversation: System role not supported"):
        run(refusing, mode="chat", prompt="hi", system_prompt="Be nice.")


# ----------------------------------------------------------------------------------- context and limits


def test_a_prompt_too_long_for_the_context_loses_its_start_with_a_warning(lm, monkeypatch):
    assert lm.context_length == 512
    words = " ".join(f"w{i}" for i in range(400))
    ids = prompt_ids(lm, words)
    assert len(ids) > 600
    sent = []
    original = lm.model.generate
    monkeypatch.setattr(lm.model, "generate",
                        lambda *a, **kw: (sent.append(kw["input_ids"][0].tolist()), original(*a, **kw))[1])
    result = run(lm, prompt=words, max_new_tokens=12)
    dropped = len(ids) - (512 - 12)
    assert result.warnings == [f"The prompt is {len(ids)} tokens long, but this model reads only 512 tokens including "
                               f"the 12 new ones: the first {dropped} tokens were truncated (the model does not see "
                               "them). Shorten the text or ask for fewer new tokens to keep it all."]
    assert sent == [ids[dropped:]]  # the end of the text is kept: it is what the model continues
    assert result.outputs[0].metadata["truncated_tokens"] == dropped
    assert result.outputs[0].metadata["prompt_tokens"] == 500


def test_max_new_tokens_over_the_context_is_refused(lm):
    with pytest.raises(ParamError, match="'max_new_tokens': 512 — must be less than this model's context length "
                                         r"\(512 tokens") as info:
        run(lm, max_new_tokens=512)
    assert "at most 511" in info.value.hint


# ------------------------------------------------------------------------------------------------ seeds


def test_seeded_sampling_is_reproducible_and_is_what_transformers_samples_with_that_seed(lm):
    sampling = {"temperature": 0.9, "top_p": 0.9, "top_k": 40, "repetition_penalty": 1.2, "max_new_tokens": 30}
    first = run(lm, seed=7, **sampling).outputs[0].text
    assert run(lm, seed=7, **sampling).outputs[0].text == first
    assert run(lm, seed=8, **sampling).outputs[0].text != first
    assert first != run(lm).outputs[0].text  # not greedy
    _, expected = direct(lm, prompt_ids(lm), seed=7, do_sample=True, temperature=0.9, top_p=0.9, top_k=40,
                         repetition_penalty=1.2, max_new_tokens=30)
    assert first == expected


# --------------------------------------------------------------------------------------- models and files


def test_loading_keeps_the_context_length_dtype_and_size(lm, tiny_lm):
    import torch

    assert lm.model.dtype == torch.float32  # auto: float32 on the CPU
    weights = (tiny_lm / "model.safetensors").stat().st_size
    assert 0.9 * weights < GEN.handle_size(lm) < 1.1 * weights
    assert load(tiny_lm, dtype="bfloat16").model.dtype == torch.bfloat16


def test_bad_model_folders_are_refused_naming_the_problem(tiny_lm, tmp_path):
    no_tokenizer = tmp_path / "no-tokenizer"
    shutil.copytree(tiny_lm, no_tokenizer, ignore=shutil.ignore_patterns("tokenizer*", "chat_template*"))
    with pytest.raises(ModelFormatError, match="no-tokenizer has no tokenizer") as info:
        load(no_tokenizer)
    assert "tokenizer files" in info.value.hint

    corrupt = tmp_path / "corrupt"
    shutil.copytree(tiny_lm, corrupt)
    weights = corrupt / "model.safetensors"
    weights.write_bytes(weights.read_bytes()[:-1000])
    with pytest.raises(ModelFormatError, match="model.safetensors is not a valid safetensors file: it is truncated"):
        load(corrupt)

    (tmp_path / "empty").mkdir()
    with pytest.raises(ModelFormatError, match="empty is not a transformers model folder: it has no config.json"):
        load(tmp_path / "empty")
    with pytest.raises(ModelFormatError, match="model.safetensors is a single file"):
        load(tiny_lm / "model.safetensors")


def test_pickle_weights_need_permission(lm, tiny_lm, tmp_path):
    import torch
    from safetensors.torch import load_file

    pickled = tmp_path / "pickled"
    shutil.copytree(tiny_lm, pickled, ignore=shutil.ignore_patterns("*.safetensors"))
    torch.save(load_file(str(tiny_lm / "model.safetensors")), pickled / "pytorch_model.bin")
    with pytest.raises(ModelFormatError, match="pytorch_model.bin is a pickle-format weights file") as info:
        load(pickled)
    assert "allow pickle" in info.value.hint
    allowed = load(pickled, allow_pickle=True)
    assert run(allowed).outputs[0].text == run(lm).outputs[0].text  # the same weights


def test_the_demo_model_is_built_offline_the_same_every_time(tiny_lm, tmp_path):
    again = build_tiny_lm(tmp_path / "again")
    files = sorted(p.name for p in tiny_lm.iterdir())
    assert files == sorted(p.name for p in again.iterdir())
    assert {"model.safetensors", "tokenizer.json", "config.json", "chat_template.jinja"} <= set(files)
    assert all((tiny_lm / name).read_bytes() == (again / name).read_bytes() for name in files)


# --------------------------------------------------------------------------------- the ways in: host


def test_importing_the_plugin_imports_no_torch():
    code = ("import sys\nimport plugins.text, plugins.text.generator, plugins.text.streaming, plugins.text.prompting"
            "\nprint('TORCH' if {'torch', 'transformers'} & set(sys.modules) else 'CLEAN')\n")
    result = run_python(code)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "CLEAN"


def test_registered_by_entry_point():
    from desktop.plugins import PluginManager

    generator = PluginManager().load().generator("text.transformers")
    assert isinstance(generator, TransformersTextGenerator)
    assert generator.kind == "text" and generator.default_model == "demo" and generator.has_demo_model
    assert generator.devices == ("cuda", "mps", "cpu") and generator.preload_modules == ("torch", "transformers")
    assert generator.recommended_models[0].ref == "HuggingFaceTB/SmolLM2-360M-Instruct"
    assert all(m.size_checked == "2026-11" and m.size_bytes and m.license for m in generator.recommended_models)


@pytest.fixture
def engine(studiolo_site, qtbot, request):
    """An engine running the generators in worker processes (the default), or in this process for a test marked
    ``in_process`` (one that patches the library in this process)."""
    from desktop.engine.cache import ModelCache
    from desktop.engine.engine import Engine
    from desktop.plugins import PluginManager
    from desktop.settings import Settings

    torch_plugin.install(studiolo_site)
    engine = Engine(PluginManager(Settings()).load(), Settings(idle_unload_minutes=0), store=None, library=None,
                    cache=ModelCache(), in_process=request.node.get_closest_marker("in_process") is not None)
    yield engine
    assert engine.shutdown(timeout=30)


@pytest.mark.in_process  # transformers is patched in this process
def test_a_failure_inside_generation_fails_the_job_and_the_worker_takes_the_next(engine, tiny_lm, qtbot,
                                                                                   monkeypatch):
    from transformers import GPT2LMHeadModel

    from desktop.engine.jobs import JobState

    calls = []
    forward = GPT2LMHeadModel.forward

    def failing(self, *args, **kwargs):
        calls.append(1)
        if len(calls) == 3:
            raise RuntimeError("boom at the third token")
        return forward(self, *args, **kwargs)

    monkeypatch.setattr(GPT2LMHeadModel, "forward", failing)
    texts = []
    engine.job_previewed.connect(lambda job_id, chunk: texts.append(chunk))
    with qtbot.waitSignal(engine.job_failed, timeout=WAIT) as failed:
        bad = engine.submit("text.transformers", GREEDY, model=str(tiny_lm), seed=1)
    assert failed.args[0] == bad.id and bad.state is JobState.FAILED
    assert failed.args[1].startswith("Text (language model) failed: RuntimeError: boom at the third token")
    assert "boom at the third token" in bad.error_detail and len(calls) == 3
    with qtbot.waitSignal(engine.job_finished, timeout=WAIT) as finished:
        good = engine.submit("text.transformers", GREEDY, model=str(tiny_lm), seed=1)
    assert finished.args[0] == good.id and good.state is JobState.DONE
    assert finished.args[1][0].metadata["new_tokens"] == 24
    assert len(engine._workers) == 1  # the same worker thread served both


def test_seeded_sampling_is_the_same_while_another_generator_draws_random_numbers(engine, tiny_lm, qtbot):
    params = {**GREEDY, "temperature": 1.0, "max_new_tokens": 40}

    def text_alone():
        job: dict[str, str] = {}  # the noise job may finish meanwhile: wait for this one
        with qtbot.waitSignal(engine.job_finished, timeout=WAIT,
                              check_params_cb=lambda job_id, _: job_id == job.get("id")) as done:
            job["id"] = engine.submit("text.transformers", params, model=str(tiny_lm), seed=3).id
        return done.args[1][0].text

    alone = text_alone()
    noise = {"steps": 400, "global_rng": True}
    with qtbot.waitSignal(engine.job_progressed, timeout=WAIT):  # the noise job is drawing from the global RNG
        engine.submit("test.noise", noise, seed=5)
    with qtbot.waitSignal(engine.job_finished, timeout=WAIT, check_params_cb=lambda job_id, _: job_id == text.id) \
            as done:
        text = engine.submit("text.transformers", params, model=str(tiny_lm), seed=3)
    assert done.args[1][0].text == alone
    assert text_alone() == alone


def test_generate_from_the_command_line_with_the_demo_model(studiolo_home):
    from desktop.models.demo import ensure_demo_model

    result = run_cli("generate", "text.transformers", "--model", "demo", "--param", "prompt=Once upon a time",
                     "--param", "max_new_tokens=8", "--seed", "1")
    assert result.returncode == 0, result.stderr
    assert "8/8" in result.stderr and "seed 1" in result.stderr
    demo = load(ensure_demo_model(GEN))  # built by the command, in this test's Studiolo home
    expected = run(demo, seed=1, prompt="Once upon a time", temperature=0.8, top_p=0.95, top_k=50,
                   repetition_penalty=1.1, max_new_tokens=8).outputs[0].text
    assert result.stdout.strip() == expected.strip() and expected.strip()


def test_the_generator_provides_the_writers_panel_and_reads_exported_drafts(qtbot, tmp_path, studiolo_home):
    from desktop.engine.engine import Engine
    from desktop.plugins import PluginManager
    from desktop.settings import Settings
    from desktop.ui.panel_host import GeneratorHost
    from plugins.text.drafts import Draft, Provenance, export_markdown
    from plugins.text.panel import TextPanel
    from plugins.text.params import TextParams as Params

    plugins = PluginManager(Settings()).load()
    generator = plugins.generator("text.transformers")
    engine = Engine(plugins, Settings(idle_unload_minutes=0), store=None, library=None)
    host = GeneratorHost(engine, generator, model=lambda: "demo", seed=lambda: None, message=lambda *a: None)
    panel = generator.create_panel(host)
    qtbot.addWidget(panel)
    assert isinstance(panel, TextPanel)
    engine.shutdown()

    params = Params(prompt="Once", temperature=0.3, max_new_tokens=12)
    draft = Draft.new("document")
    draft.text = "Once upon a time"
    draft.provenance.append(Provenance(start=4, end=16, model="demo", params=to_json(params), seed=5, job_id="j"))
    export_markdown(draft, tmp_path / "story.md")
    assert generator.params_from_file(tmp_path / "story.md") == params
    (tmp_path / "junk.md").write_bytes(b"---\n\xff\xfe{not front matter\n")
    assert generator.params_from_file(tmp_path / "junk.md") is None


def test_the_text_page_in_the_window_streams_into_the_document(lm, qtbot, studiolo_home):
    import os

    from desktop.engine.cache import ModelCache
    from desktop.engine.engine import Engine
    from desktop.plugins import PluginManager
    from desktop.ui.main_window import MainWindow

    plugins = PluginManager().load()
    window = MainWindow(plugins, Engine(plugins, cache=ModelCache()))
    qtbot.addWidget(window)
    window.show()
    page = window.show_page("text.transformers")
    page.model_chooser.set_ref("demo")
    panel = page.custom_panel
    qtbot.keyClicks(panel.editor, "The boats went out in the morning and")
    panel.max_new_tokens.setValue(30)
    chunks = []
    page.host.job_previewed.connect(lambda _id, chunk: chunks.append(chunk))
    with qtbot.waitSignal(window.engine.job_finished, timeout=120_000) as finished:
        job_id = panel.generate()
    text = finished.args[1][0].text
    assert finished.args[0] == job_id and "".join(chunks) == text and text
    assert panel.editor.toPlainText() == "The boats went out in the morning and" + text
    if os.environ.get("STUDIOLO_SCREENSHOTS"):
        window.grab().save(os.path.join(os.environ["STUDIOLO_SCREENSHOTS"], "text-panel.png"))
    window.close()
