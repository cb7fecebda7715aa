"""GGUF files: the demo model, converting transformers models (the same greedy tokens through llama.cpp as through
transformers), quantising with llama.cpp, reading headers, and refusing files that are not GGUF or are damaged."""

from __future__ import annotations

import concurrent.futures
import os
import shutil
import struct

import gguf
import numpy as np
import pytest
from helpers import run_python

from desktop.api import ModelFormatError, ModelNotFoundError
from plugins.gguf.convert import convert_transformers_folder, quantize
from plugins.gguf.demo import build_tiny_gguf
from plugins.gguf.gguf_file import kv_cache_bytes, read_header, resolve_gguf
from plugins.text.demo import CHAT_TEMPLATE, DEMO_TEXT

NEW_TOKENS = 16
PROMPTS = DEMO_TEXT.splitlines()[::2]  # 6 of the 12 lines: the test's time is mostly transformers generating


@pytest.fixture(scope="session")
def demo_gguf(tmp_path_factory):
    """The demo model's file (do not modify it: copy it first)."""
    return build_tiny_gguf(tmp_path_factory.mktemp("gguf-demo"))


@pytest.fixture(scope="session")
def tiny_hf(tmp_path_factory):
    """``tiny_hf(kind)`` -> (a tiny random fp32 transformers model, its save_pretrained folder, its tokenizer);
    each built once. ``kind``: ``"qwen2"``, ``"llama"``, or ``"qwen2-tied"`` (tied input/output embeddings, as
    Qwen2.5-0.5B has, and a vocabulary 80 larger than the tokenizer, padded like real models)."""
    built = {}

    def make(arch: str):
        if arch not in built:
            built[arch] = _build_hf(arch, tmp_path_factory.mktemp(f"hf-{arch}"))
        return built[arch]

    return make


def _build_hf(kind, folder):
    import torch
    from transformers import LlamaConfig, LlamaForCausalLM, Qwen2Config, Qwen2ForCausalLM

    from plugins.text.demo import _tokenizer

    tokenizer = _tokenizer()
    eos = tokenizer.eos_token_id
    tied = kind == "qwen2-tied"
    shape = dict(vocab_size=len(tokenizer) + (80 if tied else 0), hidden_size=64, intermediate_size=128,
                 num_hidden_layers=2, num_attention_heads=4, num_key_value_heads=2, max_position_embeddings=512,
                 rope_theta=10000.0, rms_norm_eps=1e-6, tie_word_embeddings=tied, bos_token_id=eos, eos_token_id=eos)
    config, model_class = (LlamaConfig, LlamaForCausalLM) if kind == "llama" else (Qwen2Config, Qwen2ForCausalLM)
    torch.manual_seed(0)
    model = model_class(config(**shape)).eval()
    with torch.no_grad():
        for parameter in model.parameters():  # larger than the default init: distinct, confident next tokens
            parameter.normal_(0.0, 0.3)
    model.save_pretrained(folder)
    tokenizer.save_pretrained(folder)
    return model, folder, tokenizer


def _llama(path, **kwargs):
    from llama_cpp import Llama

    return Llama(str(path), n_ctx=512, n_threads=2, verbose=False, **kwargs)


# ---- the demo ------------------------------------------------------------------------------------------------


def test_demo_builds_a_gguf_llama_cpp_runs(demo_gguf):
    assert demo_gguf.name == "model.gguf" and demo_gguf.is_file()
    assert [p.name for p in demo_gguf.parent.iterdir()] == ["model.gguf"]  # no temporary file left
    llm = _llama(demo_gguf)
    try:
        assert llm.n_ctx() == 512 and llm.n_vocab() == 320
        assert llm.metadata["tokenizer.chat_template"] == CHAT_TEMPLATE
        # The demo's tokenizer, through llama.cpp: the same ids as the tokenizers library gives.
        from plugins.text.demo import demo_tokenizer

        assert llm.tokenize(DEMO_TEXT.encode(), add_bos=False) == demo_tokenizer().encode(DEMO_TEXT).ids
        text = llm.create_completion("The studio was", max_tokens=20, temperature=0.8, seed=3)["choices"][0]["text"]
    finally:
        llm.close()
    assert len(text) > 10 and text.isascii() and text.isprintable()  # non-printable tokens' output rows are zero


def test_demo_is_the_same_for_the_same_seed_and_needs_no_torch(demo_gguf, tmp_path):
    code = (f"import sys; from pathlib import Path; from plugins.gguf.demo import build_tiny_gguf\n"
            f"build_tiny_gguf(Path({str(tmp_path / 'a')!r}))\n"
            f"build_tiny_gguf(Path({str(tmp_path / 'b')!r}), seed=1)\n"
            f"print(sorted(m for m in ('torch', 'transformers') if m in sys.modules))")
    result = run_python(code)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "[]"
    assert (tmp_path / "a" / "model.gguf").read_bytes() == demo_gguf.read_bytes()
    assert (tmp_path / "b" / "model.gguf").read_bytes() != demo_gguf.read_bytes()


def test_demo_header(demo_gguf):
    info = read_header(demo_gguf)
    assert (info.path, info.architecture, info.quantisation, info.context_length) == (demo_gguf, "qwen2", "F16", 512)
    assert (info.block_count, info.embedding_length, info.head_count, info.head_count_kv) == (2, 64, 4, 2)
    assert (info.key_length, info.value_length) == (16, 16)
    # embeddings + output 2×320×64; per layer: q,o 64×64, k,v 32×64, three 128×64 MLP matrices, biases, 2 norms
    per_layer = 2 * 64 * 64 + 2 * 32 * 64 + 3 * 128 * 64 + (64 + 32 + 32) + 2 * 64
    assert info.parameter_count == 2 * 320 * 64 + 2 * per_layer + 64
    assert info.has_chat_template and info.chat_template == CHAT_TEMPLATE
    assert info.file_size == demo_gguf.stat().st_size
    # K and V, 2 layers × 2 KV heads × 16 values, F16: 256 bytes a token
    assert kv_cache_bytes(info, 512) == 512 * 2 * 2 * 2 * 16 * 2
    assert kv_cache_bytes(info, 100, bytes_per_value=1) == 100 * 2 * 2 * 2 * 16


# ---- converting transformers models --------------------------------------------------------------------------


@pytest.mark.parametrize("kind,dtype", [("qwen2", "f32"), ("qwen2-tied", "f16"), ("llama", "f16")])
def test_greedy_tokens_match_transformers(tiny_hf, tmp_path, kind, dtype):
    """Tolerance: none. Greedy decoding gives exactly the same tokens through transformers (fp32) and llama.cpp.
    Measured while writing this: all 12 lines of DEMO_TEXT as prompts × 24 new tokens, identical for F32 and for F16,
    for Qwen2 (tied or not) and for Llama (whose query/key rows the converter permutes: without that, 0 of 12
    prompts matched).
    The test runs 6 prompts × 16 tokens."""
    import torch

    model, folder, tokenizer = tiny_hf(kind)
    dest = convert_transformers_folder(folder, tmp_path / "model.gguf", dtype=dtype)
    info = read_header(dest)
    assert (info.architecture, info.quantisation) == (kind.removesuffix("-tied"), dtype.upper())
    assert info.chat_template == CHAT_TEMPLATE  # from the folder's tokenizer files
    llm = _llama(dest)
    try:
        for line in PROMPTS:
            ids = tokenizer(line)["input_ids"]
            with torch.no_grad():
                expected = model.generate(torch.tensor([ids]), max_new_tokens=NEW_TOKENS, do_sample=False,
                                          pad_token_id=tokenizer.eos_token_id)[0][len(ids):].tolist()
            got = []
            for token in llm.generate(ids, temp=0.0, top_k=1, reset=True):
                got.append(token)
                if len(got) == len(expected) or token == tokenizer.eos_token_id:
                    break
            assert got == expected, line
    finally:
        llm.close()


def test_bf16_weights_convert_exactly(tiny_hf, tmp_path):
    """numpy has no bfloat16: BF16 safetensors are widened to F32 bit for bit."""
    import torch

    model, folder, tokenizer = tiny_hf("qwen2")
    shutil.copytree(folder, tmp_path / "bf16")
    model.to(torch.bfloat16).save_pretrained(tmp_path / "bf16")
    model.to(torch.float32)
    expected = model.state_dict()["model.layers.1.self_attn.q_proj.weight"].to(torch.bfloat16).float().numpy()
    dest = convert_transformers_folder(tmp_path / "bf16", tmp_path / "model.gguf", dtype="f32")
    tensors = {t.name: t for t in gguf.GGUFReader(dest).tensors}
    assert np.array_equal(tensors["blk.1.attn_q.weight"].data, expected)


def test_converting_a_folder_without_weights_is_refused(tiny_hf, tmp_path):
    _, folder, _ = tiny_hf("qwen2")
    shutil.copytree(folder, tmp_path / "m", ignore=shutil.ignore_patterns("*.safetensors"))
    with pytest.raises(ModelFormatError, match="no .safetensors"):
        convert_transformers_folder(tmp_path / "m", tmp_path / "out" / "model.gguf")
    assert not (tmp_path / "out").exists()  # nothing half-written


# ---- quantising ------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("kind", ["Q8_0", "Q4_K_M"])
def test_quantize_through_llama_cpp(demo_gguf, tmp_path, kind):
    dest = quantize(demo_gguf, tmp_path / f"model-{kind}.gguf", kind)
    info = read_header(dest)
    assert info.quantisation == kind and info.architecture == "qwen2"
    assert info.parameter_count == read_header(demo_gguf).parameter_count
    assert dest.stat().st_size < demo_gguf.stat().st_size
    llm = _llama(dest)
    try:
        assert llm.create_completion("The", max_tokens=4, temperature=0.0)["choices"][0]["text"]
    finally:
        llm.close()
    assert sorted(p.name for p in tmp_path.iterdir()) == [dest.name]


def test_quantize_refuses_what_is_not_gguf(demo_gguf, tmp_path):
    src = tmp_path / "notes.gguf"
    src.write_text("not a model\n" * 10)
    with pytest.raises(ModelFormatError, match="notes.gguf"):
        quantize(src, tmp_path / "out.gguf", "Q8_0")
    src.write_bytes(demo_gguf.read_bytes()[:-100])  # truncated: refused before llama.cpp reads it
    with pytest.raises(ModelFormatError, match="damaged GGUF file"):
        quantize(src, tmp_path / "out.gguf", "Q8_0")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["notes.gguf"]  # no output, no temporary file
    with pytest.raises(ValueError, match="unknown quantisation"):
        quantize(src, tmp_path / "out.gguf", "Q9_X")


# ---- refusing files ------------------------------------------------------------------------------------------


def _refused(path, match=None):
    with pytest.raises(ModelFormatError) as caught:
        read_header(path)
    assert str(path) in caught.value.message and caught.value.hint
    if match:
        assert match in caught.value.message
    return caught.value


def test_not_gguf_files_are_refused(tmp_path):
    from safetensors.numpy import save_file

    text = tmp_path / "readme.gguf"
    text.write_text("hello\n")
    _refused(text, "not a GGUF model file")
    save_file({"w": np.zeros((2, 2), np.float32)}, str(tmp_path / "model.safetensors"))
    _refused(tmp_path / "model.safetensors", "not a GGUF model file")
    (tmp_path / "empty.gguf").write_bytes(b"")
    _refused(tmp_path / "empty.gguf", "not a GGUF model file")
    _refused(tmp_path, "is a folder")
    with pytest.raises(ModelNotFoundError, match="missing.gguf"):
        read_header(tmp_path / "missing.gguf")


def test_bad_magic_and_version_are_refused(demo_gguf, tmp_path):
    data = demo_gguf.read_bytes()
    (tmp_path / "magic.gguf").write_bytes(b"GGUG" + data[4:])
    _refused(tmp_path / "magic.gguf", "not a GGUF model file")
    (tmp_path / "version.gguf").write_bytes(data[:4] + struct.pack("<I", 99) + data[8:])
    _refused(tmp_path / "version.gguf", "damaged GGUF file")


def test_truncated_files_are_refused_wherever_they_end(demo_gguf, tmp_path):
    reader = gguf.GGUFReader(demo_gguf)  # where the parts of the intact file are
    cuts = {
        "fixed header": 10,
        "key/value metadata": reader.fields["general.architecture"].offset + 10,
        "token list": reader.fields["tokenizer.ggml.tokens"].offset + 500,
        "chat template": reader.fields["tokenizer.chat_template"].offset + 40,
        "tensor infos": reader.tensors[3].field.offset + 5,
        "tensor data": reader.data_offset + 100,
        "last byte": demo_gguf.stat().st_size - 1,
    }
    del reader
    data = demo_gguf.read_bytes()
    for where, cut in cuts.items():
        path = tmp_path / f"cut-{cut}.gguf"
        path.write_bytes(data[:cut])
        error = _refused(path, "damaged GGUF file")
        assert "download or copy it again" in error.hint, where


def test_nonsense_counts_are_refused_at_once(demo_gguf, tmp_path):
    """Counts far beyond what the file holds (the stock reader would loop on them for ever) are refused."""
    data = bytearray(demo_gguf.read_bytes())
    huge_tensors = bytearray(data)
    huge_tensors[8:16] = struct.pack("<Q", 2**62)
    (tmp_path / "tensors.gguf").write_bytes(huge_tensors)
    _refused(tmp_path / "tensors.gguf", "claims 4611686018427387904 tensors")

    reader = gguf.GGUFReader(demo_gguf)
    field = reader.fields["tokenizer.ggml.token_type"]  # an array of int32: its length follows key, type, item type
    length_at = field.offset + 8 + len(field.name) + 4 + 4
    del reader
    assert struct.unpack_from("<Q", data, length_at)[0] == 320
    struct.pack_into("<Q", data, length_at, 2**60)
    (tmp_path / "array.gguf").write_bytes(data)
    _refused(tmp_path / "array.gguf", "claims 1152921504606846976 array items")


def test_a_fifo_is_refused_without_waiting(tmp_path):
    fifo = tmp_path / "pipe.gguf"
    os.mkfifo(fifo)
    pool = concurrent.futures.ThreadPoolExecutor(1)
    future = pool.submit(read_header, fifo)
    try:
        with pytest.raises(ModelFormatError, match="not a regular file"):
            future.result(timeout=30)
    finally:
        if not future.done():  # a reader stuck opening the FIFO: give it a writer so the thread ends
            os.close(os.open(fifo, os.O_WRONLY | os.O_NONBLOCK))
        pool.shutdown(wait=True)


# ---- finding the file in a folder ----------------------------------------------------------------------------


def test_resolve_gguf(demo_gguf, tmp_path):
    assert resolve_gguf(demo_gguf) == demo_gguf
    assert resolve_gguf(demo_gguf.parent) == demo_gguf
    folder = tmp_path / "two"
    folder.mkdir()
    (folder / "notes.txt").write_text("x")
    with pytest.raises(ModelFormatError, match="holds no .gguf file") as none:
        resolve_gguf(folder)
    assert str(folder) in none.value.message
    (folder / "m-Q4_K_M.gguf").write_bytes(b"GGUF")
    (folder / ".m-Q8_0.gguf.abcdefgh.tmp").write_bytes(b"GGUF")  # a write in progress is not a model
    assert resolve_gguf(folder) == folder / "m-Q4_K_M.gguf"
    (folder / "m-Q8_0.gguf").write_bytes(b"GGUF")
    with pytest.raises(ModelFormatError) as several:
        resolve_gguf(folder)
    assert str(folder) in several.value.message
    assert "m-Q4_K_M.gguf" in several.value.message and "m-Q8_0.gguf" in several.value.message
    split = tmp_path / "split"
    split.mkdir()
    for part in (1, 2):
        (split / f"big-{part:05d}-of-00002.gguf").write_bytes(b"GGUF")
    assert resolve_gguf(split) == split / "big-00001-of-00002.gguf"
    with pytest.raises(ModelNotFoundError):
        resolve_gguf(tmp_path / "nowhere")
