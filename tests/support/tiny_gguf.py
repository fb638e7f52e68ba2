"""A tiny llama GGUF with Orpheus' vocabulary that streams valid (random) audio tokens.

The model exists to test the server against the real llama-server binary without a 3B model.
It has Orpheus' 156,940-id vocabulary (a GPT-2 byte-level BPE base, Llama-3's special tokens
at 128000..128255 and ``<custom_token_N>`` at ``128256 + N``) and one transformer layer whose
attention and feed-forward weights are zero. The next token therefore depends only on the
current token, through ``token_embd`` -> final RMSNorm -> ``output``:

* embedding dims 0..6 hold a one-hot of the *next* frame position, dim 7 is a constant 1 (a
  bias), dims 8..15 hold a random unit vector; every embedding has the same norm, so the
  RMSNorm only scales by a constant;
* an audio token of position ``p`` points at position ``(p + 1) % 7``; every other token
  (start of speech 128257 included) points at position 0;
* each output row of an audio token of position ``q`` is ``M * e_q`` plus a random vector in
  dims 8..15, and every non-audio row is ``-M * e_7``. The 4096 tokens of the next position
  score far above all others (invalid tokens are never sampled), while the random part spreads
  the choice among several codes, so sampling gives varying codes and greedy decoding a
  deterministic but non-constant chain.

End of speech (128258) is never produced: generation runs until ``n_predict``.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np

from orpheus_ws.vocabulary import (
    AUDIO_TOKEN_BASE,
    BOS,
    CODEBOOK_SIZE,
    CUSTOM_TOKEN_BASE,
    END_OF_SPEECH,
    EOT,
    TOKENS_PER_FRAME,
    VOCAB_SIZE,
)

EMBED_DIM = 16
FFN_DIM = 32
N_HEAD = 2
CONTEXT_LENGTH = 131072
BIAS_DIM = TOKENS_PER_FRAME  # dim 7
RANDOM_DIMS = slice(TOKENS_PER_FRAME + 1, EMBED_DIM)  # dims 8..15
MARGIN = 16.0  # separates the next position's audio tokens from everything else
SPREAD = 2.0  # how strongly the random part picks among the next position's codes

LLAMA3_SPECIALS = {
    0: "<|begin_of_text|>",
    1: "<|end_of_text|>",
    4: "<|finetune_right_pad_id|>",
    6: "<|start_header_id|>",
    7: "<|end_header_id|>",
    8: "<|eom_id|>",
    9: "<|eot_id|>",
    10: "<|python_tag|>",
}

# gguf's TokenType values (kept local so importing this module does not need gguf)
_NORMAL, _CONTROL, _USER_DEFINED = 1, 3, 4


def _bytes_to_unicode() -> list[str]:
    """GPT-2's printable stand-in character for each byte value 0..255."""
    printable = [
        *range(ord("!"), ord("~") + 1),
        *range(ord("¡"), ord("¬") + 1),
        *range(ord("®"), ord("ÿ") + 1),
    ]
    mapping: dict[int, int] = {b: b for b in printable}
    extra = 0
    for b in range(256):
        if b not in mapping:
            mapping[b] = 256 + extra
            extra += 1
    return [chr(mapping[b]) for b in range(256)]


def _vocabulary() -> tuple[list[str], list[int], list[str]]:
    """Token texts, token types and BPE merges for Orpheus' id layout."""
    byte_chars = _bytes_to_unicode()
    space = byte_chars[ord(" ")]  # "Ġ"
    tokens: list[str] = [*byte_chars, space + "t"]
    merges = [f"{space} t"]
    tokens.extend(f"x{i}" for i in range(len(tokens), BOS))
    types = [_NORMAL] * BOS
    reserved = 2
    for offset in range(CUSTOM_TOKEN_BASE - BOS):
        name = LLAMA3_SPECIALS.get(offset)
        if name is None:
            name = f"<|reserved_special_token_{reserved}|>"
            reserved += 1
        tokens.append(name)
        types.append(_CONTROL)
    for n in range(VOCAB_SIZE - CUSTOM_TOKEN_BASE):
        tokens.append(f"<custom_token_{n}>")
        types.append(_USER_DEFINED)
    assert len(tokens) == VOCAB_SIZE and len(set(tokens)) == VOCAB_SIZE
    return tokens, types, merges


def _unit_rows(rng: np.random.Generator, rows: int, dims: int) -> np.ndarray:
    v = rng.standard_normal((rows, dims)).astype(np.float32)
    v /= np.linalg.norm(v, axis=1, keepdims=True)
    return v


def tiny_weights(seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """The token embedding and output matrices, both shaped (VOCAB_SIZE, EMBED_DIM)."""
    rng = np.random.default_rng(seed)
    n_audio = TOKENS_PER_FRAME * CODEBOOK_SIZE
    audio = slice(AUDIO_TOKEN_BASE, AUDIO_TOKEN_BASE + n_audio)
    position = np.arange(n_audio) // CODEBOOK_SIZE
    n_random = RANDOM_DIMS.stop - RANDOM_DIMS.start

    embd = np.zeros((VOCAB_SIZE, EMBED_DIM), dtype=np.float32)
    embd[:, 0] = 1.0  # every non-audio token leads to position 0
    embd[audio, 0] = 0.0
    embd[np.arange(audio.start, audio.stop), (position + 1) % TOKENS_PER_FRAME] = 1.0
    embd[:, BIAS_DIM] = 1.0
    embd[:, RANDOM_DIMS] = _unit_rows(rng, VOCAB_SIZE, n_random)

    out = np.zeros((VOCAB_SIZE, EMBED_DIM), dtype=np.float32)
    out[:, BIAS_DIM] = -MARGIN
    out[audio, BIAS_DIM] = 0.0
    out[np.arange(audio.start, audio.stop), position] = MARGIN
    out[audio, RANDOM_DIMS] = SPREAD * _unit_rows(rng, n_audio, n_random)
    return embd, out


def write_tiny_orpheus_gguf(path: Path, *, seed: int = 0) -> Path:
    """Write the tiny Orpheus-layout llama GGUF (about 24 MB, float32) to ``path``.

    ``seed`` picks the random parts of the weights (which codes follow which). Returns ``path``.
    """
    import gguf  # a dev dependency, imported late

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tokens, types, merges = _vocabulary()
    embd, out = tiny_weights(seed)
    head_dim = EMBED_DIM // N_HEAD

    writer = gguf.GGUFWriter(path, "llama")
    writer.add_name("orpheus-tiny-test")
    writer.add_file_type(gguf.LlamaFileType.ALL_F32)
    writer.add_vocab_size(VOCAB_SIZE)
    writer.add_context_length(CONTEXT_LENGTH)
    writer.add_embedding_length(EMBED_DIM)
    writer.add_block_count(1)
    writer.add_feed_forward_length(FFN_DIM)
    writer.add_head_count(N_HEAD)
    writer.add_head_count_kv(N_HEAD)
    writer.add_rope_dimension_count(head_dim)
    writer.add_rope_freq_base(500000.0)
    writer.add_layer_norm_rms_eps(1e-5)

    writer.add_tokenizer_model("gpt2")
    writer.add_tokenizer_pre("llama-bpe")
    writer.add_token_list(tokens)
    writer.add_token_types(types)
    writer.add_token_merges(merges)
    writer.add_bos_token_id(BOS)
    writer.add_eos_token_id(END_OF_SPEECH)
    writer.add_eot_token_id(EOT)
    writer.add_add_bos_token(False)

    zeros = np.zeros
    writer.add_tensor("token_embd.weight", embd)
    writer.add_tensor("blk.0.attn_norm.weight", np.ones(EMBED_DIM, dtype=np.float32))
    for name in ("attn_q", "attn_k", "attn_v", "attn_output"):
        writer.add_tensor(f"blk.0.{name}.weight", zeros((EMBED_DIM, EMBED_DIM), np.float32))
    writer.add_tensor("blk.0.ffn_norm.weight", np.ones(EMBED_DIM, dtype=np.float32))
    writer.add_tensor("blk.0.ffn_gate.weight", zeros((FFN_DIM, EMBED_DIM), np.float32))
    writer.add_tensor("blk.0.ffn_up.weight", zeros((FFN_DIM, EMBED_DIM), np.float32))
    writer.add_tensor("blk.0.ffn_down.weight", zeros((EMBED_DIM, FFN_DIM), np.float32))
    writer.add_tensor("output_norm.weight", np.ones(EMBED_DIM, dtype=np.float32))
    writer.add_tensor("output.weight", out)

    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_tensors_to_file()
    writer.close()
    return path


def main(argv: list[str] | None = None) -> None:
    """``python -m tests.support.tiny_gguf OUT.gguf [--seed N]``."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("out", type=Path, help="where to write the .gguf file")
    parser.add_argument("--seed", type=int, default=0, help="seed of the random weights")
    args = parser.parse_args(argv)
    written = write_tiny_orpheus_gguf(args.out, seed=args.seed)
    print(f"wrote {written} ({written.stat().st_size / 1e6:.1f} MB)")


if __name__ == "__main__":
    main()
