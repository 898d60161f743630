"""The trained network: MiniLM encoder + linear head, and which of its tensors are trained (and so exported)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from curation.raters.iqs import HEAD_PREFIX, mean_pool, pool_mask

# Stays frozen and is not exported: the scorer takes it from the package at load time.
FROZEN = ("embeddings.word_embeddings.weight",)


class IQSModel:
    """MiniLM encoder + linear head with the trainable/frozen split used for export."""

    def __init__(self, encoder: Any, head: Any, pooling: str = "mean") -> None:
        self.encoder = encoder
        self.head = head
        self.pooling = pooling

    def parameters(self) -> tuple[list[Any], list[Any]]:
        enc = [p for n, p in self.encoder.named_parameters() if p.requires_grad]
        return enc, list(self.head.parameters())

    def train(self, mode: bool = True) -> None:
        self.encoder.train(mode)
        self.head.train(mode)

    def __call__(self, batch: dict[str, Any]) -> Any:
        hidden = self.encoder(**batch).last_hidden_state
        mask = pool_mask(batch["attention_mask"], batch["token_type_ids"], self.pooling)
        return self.head(mean_pool(hidden, mask)).squeeze(-1)

    def trainable_state(self) -> dict[str, Any]:
        state = {k: v.detach().clone() for k, v in self.encoder.state_dict().items() if k not in FROZEN}
        state.update({HEAD_PREFIX + k: v.detach().clone() for k, v in self.head.state_dict().items()})
        return state

    def load_trainable(self, state: dict[str, Any]) -> None:
        enc = {k: v for k, v in state.items() if not k.startswith(HEAD_PREFIX)}
        self.encoder.load_state_dict(enc, strict=False)
        self.head.load_state_dict({k[len(HEAD_PREFIX) :]: v for k, v in state.items() if k.startswith(HEAD_PREFIX)})


def build_model(base: Path, num_layers: int, pooling: str = "mean") -> IQSModel:
    import torch
    from transformers import AutoModel

    encoder = AutoModel.from_pretrained(str(base))
    # The pretrained pooler is unused (mean pooling); dropping it after loading, rather than with
    # add_pooling_layer=False, avoids transformers' "unexpected keys" load report.
    encoder.pooler = None
    encoder.encoder.layer = encoder.encoder.layer[:num_layers]
    encoder.config.num_hidden_layers = num_layers
    for name, param in encoder.named_parameters():
        param.requires_grad = name not in FROZEN
    head = torch.nn.Linear(encoder.config.hidden_size, 1)
    torch.nn.init.normal_(head.weight, std=0.02)
    torch.nn.init.zeros_(head.bias)
    return IQSModel(encoder, head, pooling)
