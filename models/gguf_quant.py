"""Rewrite a GGUF's matrices that llama.cpp's prebuilt CPU kernels multiply slowly.

Why (measured, docs/benchmarks.md, 2026-12-03): the SmolLM2 pack ships
Q4_1. llama.cpp's CPU backend has no repacked (interleaved) kernel for
Q4_1, and its tiled matmul (llamafile) takes Q4_0 and Q8_0 but not Q4_1,
so every product with a Q4_1 matrix is a row-by-row dot product (``perf``:
84% of a prompt's time in ``ggml_vec_dot_q4_1_q8_1``). Reading a prompt
then costs almost as much per token as generating one, and eight chats
decoded together cost eight times one. Q8_0 takes the tiled path.

Q8_0, not Q4_0, because the pack's Q4_1 weights are the only source (the
fp32 reference model is dequantized from them too): Q8_0 holds each Q4_1
value to within 1/254 of its block's largest, well under Q4_1's own step,
so the model is the same one; Q4_0 would round it a second time.
"""

from __future__ import annotations

import mmap
import os
import struct
from pathlib import Path

# Source type -> the type written instead. Only Q4_1 was measured; K-quants
# (the coder's Q4_K_M) already have repacked kernels and are left alone.
REWRITE = {"Q4_1": "Q8_0"}


def needs_rewrite(gguf_file: Path) -> bool:
    import gguf

    return any(gguf.GGMLQuantizationType(t).name in REWRITE for t in tensor_types(gguf_file))


# Bytes of each fixed-size GGUF value type (gguf.GGUFValueType's numbers); 8 is a
# string (u64 length, then the bytes), 9 an array (u32 type, u64 count, items).
_SIZES = {0: 1, 1: 1, 2: 2, 3: 2, 4: 4, 5: 4, 6: 4, 7: 1, 10: 8, 11: 8, 12: 8}


def tensor_types(gguf_file: Path) -> set[int]:
    """The ggml types of a GGUF's tensors, read from its header alone.

    gguf.GGUFReader builds a numpy view of every value, and the coder's
    tokenizer holds ~300,000 strings: it took 13 s of every cold load to learn
    that the Q4_K_M file needs no rewrite. Skipping the values takes ~0.1 s.
    """
    with open(gguf_file, "rb") as f, mmap.mmap(f.fileno(), 0, access=mmap.ACCESS_READ) as m:
        if m[:4] != b"GGUF":
            raise ValueError(f"{gguf_file} is not a GGUF file")
        try:
            return _header_types(m)
        except (struct.error, KeyError) as err:  # cut short, or a value type it cannot hold
            raise ValueError(f"{gguf_file} is not a whole GGUF file ({err})") from None


def _header_types(m) -> set[int]:
    """The tensor types of a GGUF's header in ``m`` (its bytes), stepping over every value."""
    n_tensors, n_kv = struct.unpack_from("<QQ", m, 8)
    at = 24
    for _ in range(n_kv):
        at = _skip(m, 8, at)  # the key
        kind = struct.unpack_from("<I", m, at)[0]
        at = _skip(m, kind, at + 4)
    types = set()
    for _ in range(n_tensors):
        at = _skip(m, 8, at)  # the name
        n_dims = struct.unpack_from("<I", m, at)[0]
        at += 4 + 8 * n_dims
        types.add(struct.unpack_from("<I", m, at)[0])
        at += 12  # the type and the data offset
    return types


def _skip(m, kind: int, at: int) -> int:
    """Where the value of GGUF type ``kind`` that starts at ``at`` ends."""
    if kind == 8:
        return at + 8 + struct.unpack_from("<Q", m, at)[0]
    if kind == 9:
        item, count = struct.unpack_from("<IQ", m, at)
        at += 12
        if item in _SIZES:
            return at + count * _SIZES[item]
        for _ in range(count):
            at = _skip(m, item, at)
        return at
    return at + _SIZES[kind]


def fast_gguf(gguf_file: Path) -> Path:
    """The GGUF to serve: ``gguf_file`` itself, or its rewritten sibling (made once).

    The sibling is named for what it holds (``X.Q4_1.gguf`` -> ``X.Q8_0.gguf``)
    and written atomically, so two processes loading at once never read half
    a file.
    """
    gguf_file = Path(gguf_file)
    out = gguf_file.with_name(gguf_file.stem.removesuffix(".Q4_1") + ".Q8_0.gguf")
    if out.is_file():
        return out
    if not needs_rewrite(gguf_file):
        return gguf_file
    tmp = out.with_name(f".{out.name}.tmp-{os.getpid()}")
    try:
        rewrite(gguf_file, tmp)
        os.replace(tmp, out)
    finally:
        tmp.unlink(missing_ok=True)
    return out


def rewrite(src: Path, dst: Path) -> None:
    """Copy ``src`` to ``dst``: every key as it is, REWRITE's tensor types requantized."""
    import gguf
    import numpy as np

    reader = gguf.GGUFReader(str(src))
    arch = reader.fields[gguf.Keys.General.ARCHITECTURE].contents()
    writer = gguf.GGUFWriter(str(dst), arch)
    for field in reader.fields.values():
        # The writer adds the architecture and the GGUF.* header fields itself.
        if field.name == gguf.Keys.General.ARCHITECTURE or field.name.startswith("GGUF."):
            continue
        kind = field.types[0]
        sub = field.types[-1] if kind == gguf.GGUFValueType.ARRAY else None
        value = field.contents()
        if field.name == gguf.Keys.General.FILE_TYPE and value == gguf.LlamaFileType.MOSTLY_Q4_1:
            value = gguf.LlamaFileType.MOSTLY_Q8_0  # what the file now mostly holds
        writer.add_key_value(field.name, value, kind, sub_type=sub)
    tensors = []
    for t in reader.tensors:
        to = REWRITE.get(t.tensor_type.name)
        if to is None:
            tensors.append((t.name, t.data, t.tensor_type))
            continue
        values = gguf.quants.dequantize(t.data, t.tensor_type).astype(np.float32)
        qtype = gguf.GGMLQuantizationType[to]
        tensors.append((t.name, gguf.quants.quantize(values, qtype), qtype))
    for name, data, qtype in tensors:
        writer.add_tensor_info(name, data.shape, data.dtype, data.nbytes, qtype)
    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_ti_data_to_file()
    for _, data, _ in tensors:
        writer.write_tensor_data(data)
    writer.close()
