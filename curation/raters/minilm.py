"""A small pure-torch BERT encoder for IQS inference (all-MiniLM-L6-v2), without importing transformers.

Why: importing ``transformers``' BertModel costs ~2.6 s per process, more than a tenth of a whole
``curation rate`` run on 3,000 records. The forward below is the computation of ``transformers``'
BertModel with SDPA attention (eval mode, no pooler) in the same order of operations, so scores are
bitwise equal to it in bf16 and fp32 on this machine (checked on 3,000 Alpaca records); the
parameter names are BertModel's, so the package's ``model.safetensors`` and the shipped IQS tensors
load by name. Training keeps using ``transformers`` (``training/iqs/model.py``); this only runs it.
"""

from __future__ import annotations

import json
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn

# oneDNN's linear with the bias fused in (what torch.compile uses on CPU). In bf16 it gives the same
# bits as F.linear, whose addmm first copies the bias into every output row: ~10% of encoder time.
try:
    _ONEDNN_LINEAR = torch.ops.mkldnn._linear_pointwise if torch.backends.mkldnn.is_available() else None
except (AttributeError, RuntimeError):
    _ONEDNN_LINEAR = None


def linear(layer: nn.Module, x: torch.Tensor) -> torch.Tensor:
    """``layer(x)``, through the fused oneDNN op for plain bf16 ``nn.Linear`` layers on the CPU."""
    plain_bf16 = type(layer) is nn.Linear and layer.weight.dtype == torch.bfloat16
    if _ONEDNN_LINEAR is not None and plain_bf16 and x.device.type == "cpu":
        return _ONEDNN_LINEAR(x, layer.weight, layer.bias, "none", [], "")
    return layer(x)  # fp32, other devices, or a module swapped in (e.g. int8 dynamic quantisation)


class Embeddings(nn.Module):
    def __init__(self, cfg: dict) -> None:
        super().__init__()
        hidden = cfg["hidden_size"]
        self.word_embeddings = nn.Embedding(cfg["vocab_size"], hidden)
        self.position_embeddings = nn.Embedding(cfg["max_position_embeddings"], hidden)
        self.token_type_embeddings = nn.Embedding(cfg["type_vocab_size"], hidden)
        self.LayerNorm = nn.LayerNorm(hidden, eps=cfg["layer_norm_eps"])

    def forward(self, input_ids: torch.Tensor, token_type_ids: torch.Tensor) -> torch.Tensor:
        positions = torch.arange(input_ids.shape[1], device=input_ids.device)[None, :]
        # (word + type) + position: the order BertEmbeddings adds them in (it matters in bf16).
        x = self.word_embeddings(input_ids) + self.token_type_embeddings(token_type_ids)
        return self.LayerNorm(x + self.position_embeddings(positions))


class DenseNorm(nn.Module):
    """Projection, residual add, LayerNorm (BertSelfOutput / BertOutput)."""

    def __init__(self, d_in: int, d_out: int, eps: float) -> None:
        super().__init__()
        self.dense = nn.Linear(d_in, d_out)
        self.LayerNorm = nn.LayerNorm(d_out, eps=eps)

    def forward(self, x: torch.Tensor, residual: torch.Tensor) -> torch.Tensor:
        return self.LayerNorm(linear(self.dense, x) + residual)


class SelfAttention(nn.Module):
    def __init__(self, hidden: int, n_head: int) -> None:
        super().__init__()
        self.n_head, self.head_dim = n_head, hidden // n_head
        self.query = nn.Linear(hidden, hidden)
        self.key = nn.Linear(hidden, hidden)
        self.value = nn.Linear(hidden, hidden)

    def forward(self, x: torch.Tensor, mask: torch.Tensor | None) -> torch.Tensor:
        B, T, C = x.shape
        q, k, v = (
            linear(p, x).view(B, T, self.n_head, self.head_dim).transpose(1, 2)
            for p in (self.query, self.key, self.value)
        )
        y = F.scaled_dot_product_attention(q, k, v, attn_mask=mask, scale=self.head_dim**-0.5)
        return y.transpose(1, 2).reshape(B, T, C)


class Attention(nn.Module):
    def __init__(self, cfg: dict) -> None:
        super().__init__()
        # "self" and "output" are BertAttention's child names, kept so checkpoints load by name.
        self.add_module("self", SelfAttention(cfg["hidden_size"], cfg["num_attention_heads"]))
        self.output = DenseNorm(cfg["hidden_size"], cfg["hidden_size"], cfg["layer_norm_eps"])

    def forward(self, x: torch.Tensor, mask: torch.Tensor | None) -> torch.Tensor:
        return self.output(self._modules["self"](x, mask), x)


class Layer(nn.Module):
    def __init__(self, cfg: dict) -> None:
        super().__init__()
        self.attention = Attention(cfg)
        self.intermediate = nn.Module()  # BertIntermediate: dense + GELU
        self.intermediate.dense = nn.Linear(cfg["hidden_size"], cfg["intermediate_size"])
        self.output = DenseNorm(cfg["intermediate_size"], cfg["hidden_size"], cfg["layer_norm_eps"])

    def forward(self, x: torch.Tensor, mask: torch.Tensor | None) -> torch.Tensor:
        x = self.attention(x, mask)
        return self.output(F.gelu(linear(self.intermediate.dense, x)), x)  # hidden_act "gelu": exact erf GELU


class MiniLM(nn.Module):
    """BERT encoder returning the last hidden states ``(batch, width, hidden)``; no pooler."""

    def __init__(self, cfg: dict, num_layers: int) -> None:
        super().__init__()
        self.config = cfg
        self.embeddings = Embeddings(cfg)
        self.encoder = nn.Module()  # BertEncoder, for the "encoder.layer.N." parameter names
        self.encoder.layer = nn.ModuleList(Layer(cfg) for _ in range(num_layers))

    def forward(
        self, input_ids: torch.Tensor, attention_mask: torch.Tensor, token_type_ids: torch.Tensor
    ) -> torch.Tensor:
        x = self.embeddings(input_ids, token_type_ids)
        # As transformers' SDPA path: no mask when nothing is padded, else padded keys get -inf. Built
        # once here in the model's dtype (what SDPA would convert a boolean mask into in every layer).
        mask = None
        if not bool(attention_mask.all()):
            padded = (attention_mask == 0)[:, None, None, :]
            mask = torch.zeros(padded.shape, dtype=x.dtype, device=x.device).masked_fill_(padded, float("-inf"))
        for layer in self.encoder.layer:
            x = layer(x, mask)
        return x


def load_minilm(base: Path, overlay: dict[str, torch.Tensor], num_layers: int) -> MiniLM:
    """The package's MiniLM cut to ``num_layers`` layers, with every tensor in ``overlay`` replacing the base one.

    Fails loudly if ``overlay`` names a tensor the cut model does not have (wrong base or layer count).
    """
    from safetensors.torch import load_file

    cfg = json.loads((base / "config.json").read_text(encoding="utf-8"))
    # Built on the CPU: the random init costs ~0.2 s, but building on the "meta" device costs more
    # (it imports torch's Python decompositions, 1-2 s). assign=True below then reuses the loaded tensors.
    model = MiniLM(cfg, num_layers)
    expected = model.state_dict()
    state = {k: v for k, v in load_file(str(base / "model.safetensors")).items() if k in expected}
    unknown = [k for k in overlay if k not in expected]
    if unknown:
        raise ValueError(f"IQS weights do not fit the base MiniLM: unknown tensors {unknown[:5]}")
    for name, value in overlay.items():
        state[name] = value.to(state[name].dtype)  # fp16 shipped tensors into the fp32 base, as copy_ would
    model.load_state_dict(state, strict=True, assign=True)
    return model.requires_grad_(False).eval()  # inference only (the fused linear has no backward)


def load_tokenizer(base: Path, max_length: int):  # type: ignore[no-untyped-def]
    """The package's WordPiece tokenizer set up like ``tokenizer(a, b, truncation="longest_first", max_length=...)``.

    tokenizer.json ships with fixed padding and truncation at 128; transformers replaces both per call,
    so here: no padding (the scorer pads each batch) and longest_first truncation at ``max_length``.
    """
    from tokenizers import Tokenizer

    tokenizer = Tokenizer.from_file(str(base / "tokenizer.json"))
    tokenizer.no_padding()
    tokenizer.enable_truncation(max_length=max_length, strategy="longest_first", stride=0, direction="right")
    return tokenizer
