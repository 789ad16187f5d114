"""A merged llama-family model back into GGUF, so llama.cpp serves it like its base.

llama.cpp reads GGUF; fine-tuning writes a transformers folder. The base's
own GGUF already holds everything but the weights (architecture numbers,
the tokenizer, the chat template), so the tuned file copies the base's
metadata and swaps in the new tensors, named and laid out as llama.cpp's
converter does: HF names mapped by gguf's own table, and the query and key
projections permuted back from transformers' rotary layout. Weights are
written as Q8_0 (8-bit, ~1/4 of fp32): closest to the trained weights among
the formats llama.cpp runs fast on a CPU, where Q4_1 (the pack's) would
blur what a short fine-tune changed.
"""

from __future__ import annotations

import os
from pathlib import Path

from models.base import ModelUnavailable


def permute(weights, n_head: int, n_head_kv: int | None = None):
    """transformers' q/k rows -> llama.cpp's (llama.cpp's convert_hf_to_gguf.py does this)."""
    if n_head_kv is not None and n_head != n_head_kv:
        n_head = n_head_kv
    shape = weights.shape
    return (
        weights.reshape(n_head, 2, shape[0] // n_head // 2, *shape[1:])
        .swapaxes(1, 2)
        .reshape(shape)
    )


def export(merged: Path, base_gguf: Path, out: Path) -> Path:
    """Write ``out`` (a .gguf) from the merged folder's weights and the base GGUF's metadata."""
    import gguf
    import numpy as np
    from safetensors.numpy import load_file

    reader = gguf.GGUFReader(base_gguf)
    arch = reader.fields[gguf.Keys.General.ARCHITECTURE].contents()
    if arch != "llama":
        raise ModelUnavailable(
            f"Exporting a tuned {arch} model to GGUF is not supported yet; "
            "it is served on CTranslate2 instead."
        )
    n_head = int(reader.fields[f"{arch}.attention.head_count"].contents())
    n_kv = int(reader.fields[f"{arch}.attention.head_count_kv"].contents())
    n_blocks = int(reader.fields[f"{arch}.block_count"].contents())
    names = gguf.get_tensor_name_map(gguf.MODEL_ARCH.LLAMA, n_blocks)
    in_base = {t.name for t in reader.tensors}

    tmp = out.with_suffix(".gguf.tmp")
    writer = gguf.GGUFWriter(tmp, arch)
    for field in reader.fields.values():
        if field.name == gguf.Keys.General.ARCHITECTURE or field.name.startswith("GGUF."):
            continue  # written by the writer itself
        if field.name == gguf.Keys.General.FILE_TYPE:
            continue
        kind = field.types[0]
        sub = field.types[-1] if kind == gguf.GGUFValueType.ARRAY else None
        writer.add_key_value(field.name, field.contents(), kind, sub_type=sub)
    writer.add_file_type(gguf.LlamaFileType.MOSTLY_Q8_0)

    weights = {}
    for file in sorted(Path(merged).glob("*.safetensors")):
        weights.update(load_file(file))
    written = set()
    for hf_name, tensor in weights.items():
        name = names.get_name(hf_name, try_suffixes=(".weight", ".bias"))
        if name is None:
            raise ModelUnavailable(f"No GGUF name for tensor '{hf_name}'; cannot export.")
        if name not in in_base:
            continue  # e.g. lm_head, tied to the embeddings in the base as well
        data = tensor.astype(np.float32)
        if name.endswith("attn_q.weight"):
            data = permute(data, n_head, n_head)
        elif name.endswith("attn_k.weight"):
            data = permute(data, n_head, n_kv)
        if data.ndim == 2 and data.shape[-1] % 32 == 0:
            quantized = gguf.quants.quantize(data, gguf.GGMLQuantizationType.Q8_0)
            writer.add_tensor(name, quantized, raw_dtype=gguf.GGMLQuantizationType.Q8_0)
        else:
            writer.add_tensor(name, data)  # norms stay fp32, as llama.cpp expects
        written.add(name)
    missing = in_base - written
    if missing:
        raise ModelUnavailable(
            f"The tuned model lacks {len(missing)} tensors of its base "
            f"(e.g. {sorted(missing)[0]}); cannot export."
        )
    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_tensors_to_file()
    writer.close()
    os.replace(tmp, out)  # never a half-written model where the catalog points
    return out
