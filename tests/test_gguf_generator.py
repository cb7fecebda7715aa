"""The GGUF text generator (``text.llamacpp``) on the tiny random Qwen2 GGUF demo, built once per module: streaming,
stop sequences, cancel, chat templates, seeds, truncation, threads, memory, bad files, and the ways in (entry
point, the engine's worker process, the panel)."""

from __future__ import annotations

import contextlib
import dataclasses
import shutil

import pytest
from helpers import run_python

from desktop.api import GenerationError, InsufficientMemoryError, LoadOptions, ModelFormatError, ParamError, TextOutput
from desktop.testing import run_generator
from plugins.gguf.demo import build_tiny_gguf
from plugins.gguf.generator import MIN_CONTEXT, GGUFModel, LlamaCppTextGenerator
from plugins.gguf.params import GGUFParams

GEN = LlamaCppTextGenerator()
GREEDY = {"prompt": "The studio was quiet", "temperature": 0.0, "repetition_penalty": 1.0, "max_new_tokens": 24}
SAMPLING = {"temperature": 0.9, "top_p": 0.9, "top_k": 40, "repetition_penalty": 1.2, "max_new_tokens": 30}
WAIT = 60_000  # ms: a safety net only; every wait ends on a signal


def load(path, **options) -> GGUFModel:
    return GEN.load(path, "cpu", LoadOptions({"threads": 0, "gpu_layers": 0, **options}))


@pytest.fixture(scope="module")
def tiny_gguf(tmp_path_factory):
    """The demo model's file (do not modify it: copy it first)."""
    return build_tiny_gguf(tmp_path_factory.mktemp("gguf") / "demo")


@pytest.fixture(scope="module")
def lm(tiny_gguf) -> GGUFModel:
    handle = load(tiny_gguf)
    yield handle
    GEN.unload(handle)


def run(handle, seed=1, cancel_after=None, **params):
    return run_generator(GEN, {**GREEDY, **params}, handle=handle, seed=seed, cancel_after=cancel_after)


def direct(handle, ids, *, seed=1, max_tokens=24, **sampling) -> tuple[list[int], str]:
    """llama-cpp-python alone, without streaming (``create_completion``): the new token ids and their text."""
    llama = handle.llama
    llama.reset()
    kwargs = {"temperature": 0.0, "top_p": 0.95, "top_k": 50, "repeat_penalty": 1.0, **sampling}
    result = llama.create_completion(ids, max_tokens=max_tokens, seed=seed, min_p=0.0, typical_p=1.0, **kwargs)
    text = result["choices"][0]["text"]
    return llama.tokenize(text.encode(), add_bos=False), text


def prompt_ids(handle, text=GREEDY["prompt"]) -> list[int]:
    return handle.llama.tokenize(text.encode(), add_bos=True)


@contextlib.contextmanager
def recording(handle):
    """Records the prompt ids each generation is given, and counts the model's evaluations (one for the prompt,
    then one per token after the first)."""
    llama = handle.llama
    sent, evals = [], []
    generate, evaluate = llama.generate, llama.eval
    llama.generate = lambda tokens, **kwargs: (sent.append(list(tokens)), generate(tokens, **kwargs))[1]
    llama.eval = lambda tokens: (evals.append(len(tokens)), evaluate(tokens))[1]
    try:
        yield sent, evals
    finally:
        del llama.generate, llama.eval


# -------------------------------------------------------------------------------------------- streaming


def test_the_stream_is_exactly_what_llama_cpp_writes_without_streaming(lm):
    result = run(lm)
    (output,) = result.outputs
    new, text = direct(lm, prompt_ids(lm))
    assert len(set(new)) > 8  # varied text: the comparison means something
    assert output.text == text
    assert "".join(result.previews) == output.text and len(result.previews) > 10  # streamed in many chunks
    assert [p[:2] for p in result.progress] == [(i, 24) for i in range(1, 25)]  # a report per token
    assert output.metadata == {"mode": "continue", "prompt_tokens": len(prompt_ids(lm)), "new_tokens": 24,
                               "truncated_tokens": 0, "stopped_by": "max_tokens", "seed": 1}  # text.transformers' keys
    assert result.warnings == []
    sampled = run(lm, seed=7, **SAMPLING)  # the same seed, streamed or not: the same text
    assert sampled.outputs[0].text == direct(lm, prompt_ids(lm), seed=7, max_tokens=30, temperature=0.9, top_p=0.9,
                                             top_k=40, repeat_penalty=1.2)[1]
    assert "".join(sampled.previews) == sampled.outputs[0].text
    penalised = run(lm, repetition_penalty=2.0).outputs[0].text  # the sampling settings reach llama.cpp
    assert penalised == direct(lm, prompt_ids(lm), repeat_penalty=2.0)[1] and penalised != text


def test_max_new_tokens_is_respected_and_the_end_token_ends_the_text(lm, monkeypatch):
    with recording(lm) as (_, evals):
        result = run(lm, max_new_tokens=7)
    assert result.outputs[0].metadata["new_tokens"] == 7 and result.outputs[0].metadata["stopped_by"] == "max_tokens"
    assert len(evals) == 7 and len(result.progress) == 7  # the prompt, then the 6 tokens fed back: none more
    assert run(lm).outputs[0].text.startswith(result.outputs[0].text)  # greedy: a prefix
    new, _ = direct(lm, prompt_ids(lm))
    at = next(i for i in range(3, 24) if new[i] not in new[:i])  # a token the model writes first at step i + 1
    monkeypatch.setattr(GGUFModel, "is_end", lambda self, token: token == new[at])
    (output,) = run(lm).outputs
    assert output.metadata["stopped_by"] == "eos" and output.metadata["new_tokens"] == at + 1


# ---------------------------------------------------------------------------------------- stop sequences


def test_a_stop_sequence_ends_the_text_before_it_and_none_of_it_is_streamed(lm):
    full = run(lm, max_new_tokens=40).outputs[0].text
    start = len(full) // 2
    stop = full[start:start + 4]
    first = full.index(stop)
    with recording(lm) as (_, evals):
        result = run(lm, max_new_tokens=40, stop=["never written", stop])
    (output,) = result.outputs
    assert output.text == full[:first] and stop not in output.text
    assert "".join(result.previews) == output.text  # the stop text, though written, was never streamed
    assert output.metadata["stopped_by"] == "stop_sequence"
    assert output.metadata["new_tokens"] == len(evals) < 40  # generation stopped there
    unmatched = run(lm, max_new_tokens=40, stop=["\u2603 never"]).outputs[0]
    assert unmatched.text == full and unmatched.metadata["stopped_by"] == "max_tokens"


# ----------------------------------------------------------------------------------------------- cancel


@pytest.mark.parametrize("after", [1, 5])
def test_cancel_keeps_exactly_the_tokens_so_far_and_computes_none_after(lm, after):
    new, _ = direct(lm, prompt_ids(lm), max_tokens=40)
    with recording(lm) as (_, evals):
        result = run(lm, max_new_tokens=40, cancel_after=after)  # cancelled while token `after` is reported
    assert result.cancelled and result.progress_after_cancel == 0 and len(result.progress) == after
    assert len(evals) == after  # the prompt and the tokens fed back before the cancel: nothing computed after
    (partial,) = result.outputs
    assert isinstance(partial, TextOutput) and partial.partial
    assert partial.metadata["stopped_by"] == "cancelled" and partial.metadata["new_tokens"] == after
    assert partial.text == "".join(result.previews)
    assert partial.text == lm.llama.detokenize(new[:after]).decode()  # exactly those tokens


# ------------------------------------------------------------------------------------------------- chat


def test_chat_renders_the_gguf_chat_template_with_system_prompt_and_history(lm):
    with recording(lm) as (sent, _):
        result = run(lm, mode="chat", prompt="And a haiku?", system_prompt="You are terse.",
                     history=["Write a line.", "The sea is grey."], max_new_tokens=6)
    (ids,) = sent
    assert lm.llama.detokenize(ids, special=True).decode() == (
        "<|system|>\nYou are terse.<|end|>\n<|user|>\nWrite a line.<|end|>\n<|assistant|>\nThe sea is grey.<|end|>\n"
        "<|user|>\nAnd a haiku?<|end|>\n<|assistant|>\n")
    end = lm.llama.tokenize(b"<|end|>", add_bos=False, special=True)
    assert len(end) == 1 and ids.count(end[0]) == 4  # the template's markers are the special tokens, not text
    (output,) = result.outputs
    assert output.metadata["mode"] == "chat" and output.metadata["prompt_tokens"] == len(ids)
    assert output.text == "".join(result.previews) and output.metadata["new_tokens"] == 6


def test_chat_mistakes_are_clear(lm):
    with pytest.raises(ParamError, match="'prompt': '' — chat mode needs a message to answer"):
        run(lm, mode="chat", prompt="")
    with pytest.raises(ParamError, match="'history'.*an even number of entries"):
        run(lm, mode="chat", prompt="hi", history=["a question without its answer"])
    no_template = dataclasses.replace(lm, info=dataclasses.replace(lm.info, chat_template=None))
    with pytest.raises(ParamError, match="'mode': 'chat' — this model has no chat template") as info:
        run(no_template, mode="chat", prompt="hi")
    assert "Use continue mode" in info.value.hint
    refusing = dataclasses.replace(lm, info=dataclasses.replace(
        lm.info, chat_template="{{ raise_exception('System role not supported') }}"))
    with pytest.raises(GenerationError, match="chat template refused the conversation: System role not supported"):
        run(refusing, mode="chat", prompt="hi", system_prompt="Be nice.")


# ------------------------------------------------------------------------------------------------ seeds


def test_seeded_sampling_is_reproducible_and_another_seed_writes_otherwise(lm):
    first = run(lm, seed=7, **SAMPLING).outputs[0].text
    run(lm, prompt=GREEDY["prompt"] + first, seed=3, **SAMPLING)  # another job between: nothing of it carries over
    with recording(lm) as (_, evals):
        assert run(lm, seed=7, **SAMPLING).outputs[0].text == first
    assert evals[0] == len(prompt_ids(lm))  # the whole prompt evaluated afresh, not taken from the job before
    assert run(lm, seed=8, **SAMPLING).outputs[0].text != first
    assert first != run(lm).outputs[0].text  # not greedy
    assert run(lm, seed=2**63 - 1, **SAMPLING).outputs[0].text  # any seed the host hands out is taken


# ----------------------------------------------------------------------------------- context and limits


def test_a_prompt_too_long_for_the_context_loses_its_start_with_the_same_notice(lm):
    assert lm.context_length == 512  # the file's
    words = " ".join(f"w{i}" for i in range(400))
    ids = prompt_ids(lm, words)
    assert len(ids) > 600
    with recording(lm) as (sent, _):
        result = run(lm, prompt=words, max_new_tokens=12)
    dropped = len(ids) - (512 - 12)
    assert result.warnings == [f"The prompt is {len(ids)} tokens long, but this model reads only 512 tokens including "
                               f"the 12 new ones: the first {dropped} tokens were truncated (the model does not see "
                               "them). Shorten the text or ask for fewer new tokens to keep it all."]
    assert sent == [ids[dropped:]]  # the end of the text is kept: it is what the model continues
    assert result.outputs[0].metadata["truncated_tokens"] == dropped
    assert result.outputs[0].metadata["prompt_tokens"] == 500
    with pytest.raises(ParamError, match=r"'max_new_tokens': 512 — must be less than this model's context length"):
        run(lm, max_new_tokens=512)


def patched(src, dest, key, value):
    """A copy of the GGUF ``src`` whose header gives the number ``key`` another value (patched in place)."""
    import gguf

    shutil.copyfile(src, dest)
    reader = gguf.GGUFReader(dest, "r+")
    reader.fields[key].parts[-1][0] = value
    reader.data.flush()
    del reader
    return dest


def test_the_context_is_the_files_and_shrinks_to_fit_the_free_memory_or_the_load_is_refused(tiny_gguf, tmp_path,
                                                                                        monkeypatch):
    from plugins.gguf import resources
    from plugins.gguf.gguf_file import kv_cache_bytes, read_header

    long = patched(tiny_gguf, tmp_path / "long.gguf", "qwen2.context_length", 32768)
    info = read_header(long)
    handle = load(long)
    assert handle.context_length == handle.llama.n_ctx() == 32768  # the file's, memory permitting
    assert GEN.handle_size(handle) == info.file_size + kv_cache_bytes(info, 32768) > info.file_size
    GEN.unload(handle)

    free = int((info.file_size + kv_cache_bytes(info, 4096)) / 0.9) + 1  # room for 4096 tokens, not 8192
    monkeypatch.setattr(resources, "available_memory", lambda: free)
    handle = load(long)
    assert handle.context_length == 4096 and GEN.handle_size(handle) == info.file_size + kv_cache_bytes(info, 4096)
    GEN.unload(handle)

    monkeypatch.setattr(resources, "available_memory", lambda: info.file_size)  # not even the smallest context
    kb = {"total": info.file_size + kv_cache_bytes(info, MIN_CONTEXT), "file": info.file_size,
          "cache": kv_cache_bytes(info, MIN_CONTEXT)}
    kb = {k: f"{v / 1024:.1f}" for k, v in kb.items()}
    with pytest.raises(InsufficientMemoryError, match=rf"long.gguf needs about {kb['total']} KB of memory "
                                                      rf"\({kb['file']} KB for the model and {kb['cache']} KB for a "
                                                      rf"context of {MIN_CONTEXT:,} tokens\), but only {kb['file']} "
                                                      r"KB is free") as refused:
        load(long)
    assert "smaller quantisation" in refused.value.hint


def test_threads_are_the_cores_unless_set(lm, tiny_gguf):
    from plugins.gguf.resources import automatic_threads

    assert lm.threads == automatic_threads() >= 1
    one = load(tiny_gguf, threads=1)
    assert one.threads == 1 and one.llama.context_params.n_threads == 1
    assert run(one).outputs[0].text == run(lm).outputs[0].text  # the same text, whatever the threads
    assert one.gpu_layers == 0  # this build offloads nothing: asking for layers is ignored
    GEN.unload(one)


# --------------------------------------------------------------------------------------- models and files


def unknown_architecture(dest):
    import gguf
    import numpy as np

    writer = gguf.GGUFWriter(str(dest), "mamba9000")
    writer.add_context_length(128)
    writer.add_block_count(1)
    writer.add_embedding_length(64)
    writer.add_head_count(4)
    writer.add_head_count_kv(2)
    writer.add_tensor("token_embd.weight", np.zeros((4, 8), np.float32))
    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_tensors_to_file()
    writer.close()
    return dest


def test_bad_files_are_refused_before_loading_naming_the_problem(tiny_gguf, tmp_path):
    with pytest.raises(ModelFormatError, match="odd.gguf is a model of the architecture 'mamba9000', which this "
                                               r"llama.cpp \(llama-cpp-python [\d.]+\) cannot run") as info:
        load(unknown_architecture(tmp_path / "odd.gguf"))
    assert "update llama-cpp-python" in info.value.hint
    odd_and_huge = patched(tmp_path / "odd.gguf", tmp_path / "odd-huge.gguf", "mamba9000.block_count", 2**24)
    with pytest.raises(ModelFormatError, match="odd-huge.gguf is a model of the architecture 'mamba9000'"):
        load(odd_and_huge)  # what cannot run at all is said first, not that it would not fit
    (tmp_path / "notes.gguf").write_text("not a model at all\n" * 10)
    with pytest.raises(ModelFormatError, match="notes.gguf"):
        load(tmp_path / "notes.gguf")
    (tmp_path / "cut.gguf").write_bytes(tiny_gguf.read_bytes()[:3000])
    with pytest.raises(ModelFormatError, match="cut.gguf"):
        load(tmp_path / "cut.gguf")


def test_the_handle_holds_the_file_and_its_cache_and_unloading_frees_it(tiny_gguf):
    from plugins.gguf.gguf_file import kv_cache_bytes, read_header

    info = read_header(tiny_gguf)
    handle = load(tiny_gguf.parent)  # a folder holding one .gguf: that file
    assert handle.path == tiny_gguf and GEN.handle_size(handle) == tiny_gguf.stat().st_size + kv_cache_bytes(info, 512)
    assert handle.llama._ctx.ctx is not None
    GEN.unload(handle)
    assert handle.llama._ctx.ctx is None and handle.llama._model.model is None  # llama.cpp's memory given back


def test_the_model_manager_reads_the_facts_from_the_header(tiny_gguf, tmp_path):
    assert GEN.describe_model(tiny_gguf) == {"architecture": "qwen2", "quantisation": "F16", "context": "512 tokens"}
    (tmp_path / "junk.gguf").write_bytes(b"GGUF\x03\x00")
    assert GEN.describe_model(tmp_path / "junk.gguf") == {}


def test_the_demo_model_is_built_offline_the_same_every_time(tiny_gguf, tmp_path):
    again = build_tiny_gguf(tmp_path / "again")
    assert again.read_bytes() == tiny_gguf.read_bytes()
    GEN.build_demo_model(tmp_path / "by-generator")
    assert (tmp_path / "by-generator" / "model.gguf").read_bytes() == tiny_gguf.read_bytes()


# --------------------------------------------------------------------------------- the ways in: host


def test_importing_the_plugin_imports_neither_llama_cpp_nor_torch():
    code = ("import sys\nimport plugins.gguf, plugins.gguf.generator, plugins.gguf.params, plugins.gguf.resources\n"
            "from plugins.gguf.resources import gpu_build_installed\ngpu_build_installed()\n"
            "print(sorted({'torch', 'transformers', 'llama_cpp', 'gguf'} & set(sys.modules)) or 'CLEAN')\n")
    result = run_python(code)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "CLEAN"


def test_registered_by_entry_point():
    from desktop.plugins import PluginManager

    generator = PluginManager().load().generator("text.llamacpp")
    assert isinstance(generator, LlamaCppTextGenerator) and generator.Params is GGUFParams
    assert generator.kind == "text" and generator.default_model == "demo" and generator.has_demo_model
    assert generator.devices == ("cpu",) and generator.preload_modules == ("llama_cpp",)
    assert generator.model_file_patterns == ("*.gguf",)
    assert generator.recommended_models[0].ref == "Qwen/Qwen2.5-0.5B-Instruct-GGUF/qwen2.5-0.5b-instruct-q4_k_m.gguf"
    assert all(m.ref.endswith(".gguf") and m.ref.count("/") == 2 for m in generator.recommended_models)
    assert all(m.size_checked == "2026-12" and m.size_bytes and m.license for m in generator.recommended_models)


@pytest.fixture
def engine(qtbot):
    from desktop.engine.cache import ModelCache
    from desktop.engine.engine import Engine
    from desktop.plugins import PluginManager
    from desktop.settings import Settings

    engine = Engine(PluginManager(Settings()).load(), Settings(idle_unload_minutes=0), store=None, library=None,
                    cache=ModelCache())
    yield engine
    assert engine.shutdown(timeout=30)


def test_in_the_worker_process_bad_files_fail_their_jobs_and_the_worker_serves_the_next(engine, lm, tiny_gguf,
                                                                                         tmp_path, qtbot):
    from desktop.engine.runners import ProcessRunner

    ended: dict[str, tuple[str, object]] = {}
    previews: dict[str, list] = {}
    engine.job_finished.connect(lambda job_id, outputs: ended.setdefault(job_id, ("finished", outputs)))
    engine.job_failed.connect(lambda job_id, message: ended.setdefault(job_id, ("failed", message)))
    engine.job_previewed.connect(lambda job_id, chunk: previews.setdefault(job_id, []).append(chunk))

    def job(model, seed=1, **params):
        submitted = engine.submit("text.llamacpp", {**GREEDY, **params}, model=str(model), seed=seed)
        qtbot.waitUntil(lambda: submitted.id in ended, timeout=WAIT)
        return ended[submitted.id], previews.get(submitted.id, [])

    (kind, outputs), chunks = job(tiny_gguf, seed=3, **SAMPLING)
    assert kind == "finished" and "".join(chunks) == outputs[0].text  # streamed through the process
    assert outputs[0].text == run(lm, seed=3, **SAMPLING).outputs[0].text  # the same seed: the same text here
    runner = engine.runner("text.llamacpp")
    assert isinstance(runner, ProcessRunner)
    worker = runner.process.pid
    (tmp_path / "notes.gguf").write_text("not a model at all\n" * 10)
    (tmp_path / "cut.gguf").write_bytes(tiny_gguf.read_bytes()[:3000])
    shutil.copyfile(tiny_gguf, tmp_path / "huge.gguf")
    with open(tmp_path / "huge.gguf", "r+b") as f:
        f.truncate(2**40)  # a sparse terabyte: a model file no machine running this has the memory for
    deep = patched(tiny_gguf, tmp_path / "deep.gguf", "qwen2.block_count", 2**24)  # a small file, a 1 TB KV cache
    for file, reason in [
        (unknown_architecture(tmp_path / "odd.gguf"), "odd.gguf is a model of the architecture 'mamba9000'"),
        (tmp_path / "notes.gguf", "notes.gguf"),
        (tmp_path / "cut.gguf", "cut.gguf"),
        (deep, f"deep.gguf needs about 1024.0 GB of memory ({deep.stat().st_size / 1024:.1f} KB for the model and "
               "1024.0 GB for a context of 512 tokens)"),  # the file fits (the host's check passes), its cache not
    ]:
        (kind, message), _ = job(file)
        assert kind == "failed" and reason in message, message
        (kind, outputs), _ = job(tiny_gguf, max_new_tokens=5)  # the worker goes on serving
        assert kind == "finished" and outputs[0].metadata["new_tokens"] == 5
    assert runner.process.pid == worker  # the same process throughout: a refusal is not a crash
    (kind, message), _ = job(tmp_path / "huge.gguf")  # refused by the host's own check, from the file's size
    assert kind == "failed" and "huge.gguf for Text (GGUF, llama.cpp) needs about 1024.0 GB" in message
    (kind, outputs), _ = job(tiny_gguf, max_new_tokens=5)
    assert kind == "finished" and outputs[0].metadata["new_tokens"] == 5


# ------------------------------------------------------------------------------------------------ panel


def test_the_panel_is_the_text_panel_with_llama_cpps_load_options(qtbot, tmp_path, monkeypatch):
    from desktop.testing.panel_host import RecordingPanelHost
    from plugins.gguf import resources
    from plugins.text.panel import SETTINGS_KEY, TextPanel

    host = RecordingPanelHost(tmp_path / "panels", generator_id="text.llamacpp")
    panel = GEN.create_panel(host)
    qtbot.addWidget(panel)
    assert isinstance(panel, TextPanel) and panel.params_type is GGUFParams
    assert panel.load_form.field_names() == ["threads"]  # this llama-cpp-python offloads nothing: no GPU layers
    assert panel.dtype is None and panel.gpu_layers is None
    assert panel.threads.specialValueText() == "Automatic" and panel.threads.value() == 0
    panel.threads.setValue(3)
    panel.max_new_tokens.setValue(40)
    panel.editor.setPlainText("Once upon a time")
    assert panel.generate() == "job-1"
    (params,) = host.submitted
    assert isinstance(params, GGUFParams) and params.threads == 3 and params.max_new_tokens == 40
    assert host.storage.get(SETTINGS_KEY)["threads"] == 3  # kept with the sampling settings
    panel.apply_params({"temperature": 0.3, "threads": 2, "dtype": "float32"})  # from text.transformers: no dtype
    assert panel.threads.value() == 2 and panel.temperature.value() == pytest.approx(0.3)

    monkeypatch.setattr(resources, "gpu_build_installed", lambda: True)
    with_gpu = GEN.create_panel(RecordingPanelHost(tmp_path / "gpu", generator_id="text.llamacpp"))
    qtbot.addWidget(with_gpu)
    assert with_gpu.load_form.field_names() == ["threads", "gpu_layers"]
    assert with_gpu.gpu_layers.specialValueText() == "All" and with_gpu.gpu_layers.minimum() == -1
    assert with_gpu.params().gpu_layers == 0


def test_the_gguf_page_in_the_window_streams_the_demo_model_into_the_document(qtbot, studiolo_home):
    from desktop.engine.cache import ModelCache
    from desktop.engine.engine import Engine
    from desktop.plugins import PluginManager
    from desktop.ui.main_window import MainWindow

    plugins = PluginManager().load()
    window = MainWindow(plugins, Engine(plugins, cache=ModelCache()))
    qtbot.addWidget(window)
    window.show()
    page = window.show_page("text.llamacpp")
    page.model_chooser.set_ref("demo")  # built at first use, offline
    panel = page.custom_panel
    assert panel.params_type is GGUFParams
    qtbot.keyClicks(panel.editor, "The boats went out in the morning and")
    panel.max_new_tokens.setValue(30)
    chunks = []
    page.host.job_previewed.connect(lambda _id, chunk: chunks.append(chunk))
    with qtbot.waitSignal(window.engine.job_finished, timeout=120_000) as finished:
        job_id = panel.generate()
    text = finished.args[1][0].text
    assert finished.args[0] == job_id and "".join(chunks) == text and text
    assert panel.editor.toPlainText() == "The boats went out in the morning and" + text
    window.close()
