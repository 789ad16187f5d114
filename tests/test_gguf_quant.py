"""The Q4_1 -> Q8_0 rewrite llama.cpp is served (models/gguf_quant.py), on a tiny GGUF."""

from __future__ import annotations

import gguf
import numpy as np
import pytest

from models.gguf_quant import fast_gguf, needs_rewrite, tensor_types

Q4_1, Q8_0 = gguf.GGMLQuantizationType.Q4_1, gguf.GGMLQuantizationType.Q8_0


def tiny_gguf(path, qtype=Q4_1):
    rng = np.random.default_rng(0)
    matrix = rng.normal(size=(4, 64)).astype(np.float32)
    norm = rng.normal(size=64).astype(np.float32)
    writer = gguf.GGUFWriter(str(path), "llama")
    writer.add_file_type(gguf.LlamaFileType.MOSTLY_Q4_1)
    writer.add_name("tiny")
    writer.add_token_list(["a", "b", "c"])
    packed = gguf.quants.quantize(matrix, qtype)
    writer.add_tensor_info("blk.0.ffn_up.weight", packed.shape, packed.dtype, packed.nbytes, qtype)
    writer.add_tensor_info("blk.0.attn_norm.weight", norm.shape, norm.dtype, norm.nbytes)
    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_ti_data_to_file()
    writer.write_tensor_data(packed)
    writer.write_tensor_data(norm)
    writer.close()
    return gguf.quants.dequantize(packed, qtype), norm


def tensors(path) -> dict:
    reader = gguf.GGUFReader(str(path))
    return {
        t.name: (t.tensor_type, gguf.quants.dequantize(t.data, t.tensor_type))
        for t in reader.tensors
    }


def test_q4_1_matrices_become_q8_0_holding_the_same_values(tmp_path):
    src = tmp_path / "Tiny.Q4_1.gguf"
    matrix, norm = tiny_gguf(src)
    out = fast_gguf(src)
    assert out == tmp_path / "Tiny.Q8_0.gguf" and src.is_file()
    got = tensors(out)
    kind, values = got["blk.0.ffn_up.weight"]
    assert kind == Q8_0
    # Within Q8_0's step (1/127 of each 32-value block's largest), far under Q4_1's.
    step = np.abs(matrix).reshape(-1, 32).max(axis=1, keepdims=True) / 127
    assert np.all(np.abs(values - matrix).reshape(-1, 32) <= step * 0.51 + 1e-6)
    assert got["blk.0.attn_norm.weight"][0] == gguf.GGMLQuantizationType.F32
    assert np.array_equal(got["blk.0.attn_norm.weight"][1], norm)
    fields = gguf.GGUFReader(str(out)).fields
    assert fields["general.name"].contents() == "tiny"
    assert fields["tokenizer.ggml.tokens"].contents() == ["a", "b", "c"]
    assert fields["general.file_type"].contents() == gguf.LlamaFileType.MOSTLY_Q8_0


def test_made_once_then_reused(tmp_path):
    src = tmp_path / "Tiny.Q4_1.gguf"
    tiny_gguf(src)
    out = fast_gguf(src)
    made = out.stat().st_mtime_ns
    assert fast_gguf(src) == out and out.stat().st_mtime_ns == made
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".")] == []  # no temp left


def test_a_gguf_without_q4_1_is_served_as_it_is(tmp_path):
    src = tmp_path / "Tiny.Q8_0-only.gguf"
    tiny_gguf(src, Q8_0)
    assert fast_gguf(src) == src
    assert sorted(p.name for p in tmp_path.iterdir()) == [src.name]


def test_tensor_types_are_read_from_the_header_as_gguf_reads_them(tmp_path):
    src = tmp_path / "Tiny.gguf"
    tiny_gguf(src, Q4_1)  # a string array (the tokens) and two tensors to step over
    expected = {t.tensor_type.value for t in gguf.GGUFReader(str(src)).tensors}
    assert tensor_types(src) == expected == {Q4_1.value, gguf.GGMLQuantizationType.F32.value}
    assert needs_rewrite(src)
    tiny_gguf(src, Q8_0)
    assert tensor_types(src) == {Q8_0.value, gguf.GGMLQuantizationType.F32.value}
    assert not needs_rewrite(src)
    bad = tmp_path / "bad.gguf"
    bad.write_bytes(b"RIFF" + bytes(60))
    with pytest.raises(ValueError, match="not a GGUF file"):
        tensor_types(bad)


def test_a_gguf_cut_short_is_named_not_a_struct_error(tmp_path):
    src = tmp_path / "Tiny.gguf"
    tiny_gguf(src, Q4_1)
    cut = tmp_path / "cut.gguf"
    cut.write_bytes(src.read_bytes()[:40])  # the header's counts, then the first key cut
    with pytest.raises(ValueError, match="not a whole GGUF file"):
        tensor_types(cut)
