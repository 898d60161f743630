"""IQS scorer: text normalisation, and the bundled weights' behaviour on real expert pairs."""

from __future__ import annotations

import csv
import os
from pathlib import Path

import numpy as np
import pytest

from curation.textnorm import normalize_text

REPO = Path(__file__).resolve().parent.parent
VALID_PAIRS = REPO / "training" / "data" / "iqs" / "APE_valid_pairs.csv"
ALPACA_POOL = REPO / "curation" / "data" / "pools" / "alpaca_random_9k.json"


# ---------------------------------------------------------------- normalize_text


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("Line one\\nLine two", "Line one Line two"),
        ("a\\tb", "a b"),
        ('He said \\"hi\\"', 'He said "hi"'),
        ("caf\\u00e9", "café"),
        ("It\\u2019s", "It's"),  # decoded, then folded like a typed apostrophe
        ("\\u2022 first \\u2022 second", "- first - second"),
        ("smile \\ud83d\\ude00!", "smile \U0001f600!"),  # a surrogate pair is one code point
        ("C:\\\\new", "C:\\new"),  # an escaped backslash is not a newline
        ("  lots \n\n of\t\r whitespace  ", "lots of whitespace"),
        ("", ""),
    ],
)
def test_normalize_text_cases(raw: str, expected: str) -> None:
    assert normalize_text(raw) == expected


@pytest.mark.parametrize("raw", ["lone \\ud83d here", "lone \\ude00", "real lone \ud800 half", "\udc00"])
def test_unpaired_surrogates_become_replacement_char(raw: str) -> None:
    out = normalize_text(raw)
    out.encode("utf-8")  # would raise on a surrogate left in the text
    assert "\ufffd" in out


def test_real_surrogate_pair_is_joined() -> None:
    assert normalize_text("x \ud83d\ude00") == "x \U0001f600"


def test_escaped_and_decoded_forms_agree() -> None:
    # The point of the function: an original stored with escapes reads like the expert's plain text.
    assert normalize_text("Step 1:\\n\\u2022 Mix\\n\\u2022 Bake") == normalize_text("Step 1:\n• Mix\n• Bake")


def test_normalize_is_idempotent_on_plain_text() -> None:
    text = "A plain answer, with (brackets) and 3.5 numbers."
    assert normalize_text(normalize_text(text)) == text


# ---------------------------------------------------------------- bundled scorer


@pytest.fixture(scope="module")
def scorer():  # type: ignore[no-untyped-def]
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    from curation.raters.iqs import IQSScorer

    return IQSScorer.load()


def _valid_pairs(n: int) -> list[tuple[str, str, str]]:
    """First n valid pairs as (instruction part, expert response, original response), raw text."""
    with VALID_PAIRS.open(encoding="utf-8", newline="") as handle:
        rows = list(csv.DictReader(handle))[:n]
    strip = lambda s: s.strip().removeprefix("Instruction:").strip()
    return [
        (strip(r["src"]), r["pos"].removeprefix("Response:").strip(), r["neg"].removeprefix("Response:").strip())
        for r in rows
    ]


@pytest.mark.slow  # loads the real scorer (once per module)
def test_prefers_expert_response_on_valid_pairs(scorer) -> None:  # type: ignore[no-untyped-def]
    pairs = _valid_pairs(40)
    prompts = [p for p, _, _ in pairs]
    empty = [""] * len(pairs)
    pos = scorer.score(prompts, empty, [e for _, e, _ in pairs])
    neg = scorer.score(prompts, empty, [o for _, _, o in pairs])
    assert np.mean(pos > neg) >= 0.75


@pytest.mark.slow  # loads the real scorer (once per module)
def test_scores_are_deterministic(scorer) -> None:  # type: ignore[no-untyped-def]
    instr, inp, out = _sample_records()
    first = scorer.score(instr, inp, out)
    second = scorer.score(instr, inp, out)
    assert first.dtype == np.float64 and first.shape == (len(instr),)
    np.testing.assert_array_equal(first, second)


@pytest.mark.slow  # loads the real scorer (once per module)
def test_scores_do_not_depend_on_order(scorer) -> None:  # type: ignore[no-untyped-def]
    instr, inp, out = _sample_records()
    forward = scorer.score(instr, inp, out)
    perm = np.random.default_rng(0).permutation(len(instr))
    shuffled = scorer.score([instr[i] for i in perm], [inp[i] for i in perm], [out[i] for i in perm])
    np.testing.assert_allclose(shuffled, forward[perm], rtol=0, atol=1e-9)


@pytest.mark.slow  # loads the real scorer (once per module)
def test_score_alone_matches_score_in_batch(scorer) -> None:  # type: ignore[no-untyped-def]
    # A batch is padded to its longest record; padding must not change a record's score beyond
    # bf16 rounding (measured: 0.5% of the score range; masked positions are ignored by attention and pooling).
    instr, inp, out = _sample_records()
    batch = scorer.score(instr, inp, out)
    alone = np.array([scorer.score([i], [x], [o])[0] for i, x, o in zip(instr[:4], inp[:4], out[:4])])
    np.testing.assert_allclose(alone, batch[:4], atol=0.02 * (np.ptp(batch) + 1e-9))


@pytest.mark.slow  # loads the real scorer (once per module)
def test_rater_chunks_score_like_one_call(scorer) -> None:  # type: ignore[no-untyped-def]
    # The rater stores chunk by chunk; chunks cut from the scorer's own length order (whole batches)
    # must hold the batches of one big call, so a record's stored score has the bits of scoring all at once.
    from curation.raters.iqs_rater import IQSRater
    from curation.records import Record

    pool = _pool_records()[:256]
    records = [Record(r["instruction"], r["input"], r["output"]) for r in pool]
    saved = scorer.batch_size
    scorer.batch_size = 16
    try:
        one_call = scorer.score([r.instruction for r in records], [r.input for r in records],
                            [r.output for r in records])
        stored: list[list[str]] = []
        results = IQSRater(scorer, chunk_size=32).rate(records, on_results=lambda b: stored.append([x.record_id for x in b]))
    finally:
        scorer.batch_size = saved
    assert [r.record_id for r in results] == [r.id for r in records]  # back in input order
    assert len(stored) == 8 and sorted(i for chunk in stored for i in chunk) == sorted(r.id for r in records)
    np.testing.assert_array_equal([r.score for r in results], one_call)


@pytest.mark.slow  # loads the real scorer (once per module)
def test_escaped_text_scores_like_plain_text(scorer) -> None:  # type: ignore[no-untyped-def]
    plain = scorer.score(["List two fruits."], [""], ["Here are two:\n- apple\n- pear"])
    escaped = scorer.score(["List two fruits."], [""], ["Here are two:\\n- apple\\n- pear"])
    np.testing.assert_array_equal(plain, escaped)


@pytest.mark.slow  # loads the real scorer (once per module)
def test_empty_batch(scorer) -> None:  # type: ignore[no-untyped-def]
    out = scorer.score([], [], [])
    assert isinstance(out, np.ndarray) and out.shape == (0,)
    assert scorer.to_0_5(out).shape == (0,)


@pytest.mark.slow  # loads the real scorer (once per module)
def test_mismatched_lengths_raise(scorer) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(ValueError):
        scorer.score(["a", "b"], [""], ["x", "y"])


@pytest.mark.slow  # loads the real scorer (once per module)
def test_progress_reaches_total(scorer) -> None:  # type: ignore[no-untyped-def]
    instr, inp, out = _sample_records()
    seen: list[tuple[int, int]] = []
    scorer.score(instr, inp, out, progress=lambda done, total: seen.append((done, total)))
    assert seen and seen[-1] == (len(instr), len(instr))
    assert [d for d, _ in seen] == sorted(d for d, _ in seen)


@pytest.mark.slow  # loads the real scorer (once per module)
def test_to_0_5_is_monotone_and_bounded(scorer) -> None:  # type: ignore[no-untyped-def]
    raw = np.linspace(-1e3, 1e3, 20001)
    scaled = scorer.to_0_5(raw)
    assert np.all(np.isfinite(scaled))
    assert scaled.min() >= 0.0 and scaled.max() <= 5.0
    assert np.all(np.diff(scaled) >= 0)
    assert scaled[0] < 1.0 and scaled[-1] > 4.0


@pytest.mark.slow  # loads the real scorer (once per module)
def test_version_names_the_weights(scorer) -> None:  # type: ignore[no-untyped-def]
    assert scorer.version.startswith("iqs-minilm-") and len(scorer.version) > len("iqs-minilm-")


# ---------------------------------------------------------------- lean path (minilm.py) vs transformers


def _pool_records() -> list[dict[str, str]]:
    """300 Alpaca records: the 150 longest with an Input (truncated at 256 tokens), then 150 ordinary ones."""
    import json

    records = json.loads(ALPACA_POOL.read_text(encoding="utf-8"))
    size = lambda r: len(r["instruction"]) + len(r["input"]) + len(r["output"])
    return sorted((r for r in records if r["input"]), key=size, reverse=True)[:150] + records[:150]


def _formatted(records: list[dict[str, str]]) -> tuple[list[str], list[str]]:
    from curation.raters.iqs import format_prompt, format_response

    return [format_prompt(r["instruction"], r["input"]) for r in records], [
        format_response(r["output"]) for r in records
    ]


@pytest.mark.slow  # imports transformers
@pytest.mark.parametrize("max_length", [256, 64])
def test_lean_tokenizer_matches_transformers(max_length: int) -> None:
    from transformers import AutoTokenizer

    from curation.raters.iqs import base_model_path
    from curation.raters.minilm import load_tokenizer

    prompts, responses = _formatted(_pool_records())
    reference = AutoTokenizer.from_pretrained(str(base_model_path()))(
        prompts, responses, truncation="longest_first", max_length=max_length
    )
    lean = load_tokenizer(base_model_path(), max_length).encode_batch(list(zip(prompts, responses)))
    assert [e.ids for e in lean] == reference["input_ids"]
    assert [e.type_ids for e in lean] == reference["token_type_ids"]
    assert sum(len(e.ids) == max_length for e in lean) >= 10  # long records really were truncated


@pytest.mark.slow  # loads the scorer in fp32 and a transformers BertModel
def test_lean_scores_match_transformers_fp32() -> None:
    import torch
    from safetensors.torch import load_file
    from transformers import AutoModel, AutoTokenizer

    from curation.raters.iqs import BUNDLED_WEIGHTS_DIR, HEAD_PREFIX, IQSScorer, base_model_path, mean_pool

    records = _pool_records()[::30]  # 5 long records with an Input, 5 ordinary ones
    prompts, responses = _formatted(records)
    # Reference: transformers' BertModel with the shipped tensors overlaid (what the scorer did before minilm.py).
    tensors = load_file(str(BUNDLED_WEIGHTS_DIR / "iqs.safetensors"))
    encoder = AutoModel.from_pretrained(str(base_model_path()))
    encoder.pooler = None
    encoder.encoder.layer = encoder.encoder.layer[:6]
    state = encoder.state_dict()
    for name, value in tensors.items():
        if not name.startswith(HEAD_PREFIX):
            state[name].copy_(value.float())
    encoder.eval()
    head = torch.nn.Linear(384, 1)
    head.load_state_dict({k[len(HEAD_PREFIX) :]: v.float() for k, v in tensors.items() if k.startswith(HEAD_PREFIX)})
    tokenizer = AutoTokenizer.from_pretrained(str(base_model_path()))
    batch = tokenizer(prompts, responses, truncation="longest_first", max_length=256, padding=True, return_tensors="pt")
    ids, types, mask = batch["input_ids"], batch["token_type_ids"], batch["attention_mask"]
    with torch.inference_mode():
        hidden = encoder(input_ids=ids, attention_mask=mask, token_type_ids=types).last_hidden_state
        reference = head(mean_pool(hidden, mask)).squeeze(-1).double().numpy()
    scorer = IQSScorer.load(dtype="float32")
    lean = scorer.score(
        [r["instruction"] for r in records], [r["input"] for r in records], [r["output"] for r in records]
    )
    np.testing.assert_allclose(lean, reference, rtol=0, atol=1e-4)


@pytest.mark.slow  # a fresh interpreter loads the real scorer
def test_scoring_does_not_import_transformers() -> None:
    # The point of minilm.py: importing transformers costs seconds of every `curation rate` run.
    import subprocess
    import sys

    code = (
        "import sys; from curation.raters.iqs import IQSScorer; "
        "IQSScorer.load().score(['Say hi.'], [''], ['Hi!']); "
        "print(sorted(m for m in sys.modules if m.split('.')[0] in ('transformers', 'sentence_transformers')))"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=REPO, check=True)
    assert done.stdout.strip() == "[]"


def test_bundled_weights_are_small() -> None:
    weights = REPO / "curation" / "models" / "iqs"
    sizes = {p.name: p.stat().st_size for p in weights.iterdir() if p.is_file()}
    assert max(sizes.values()) < 25 * 1024 * 1024
    assert sum(sizes.values()) < 25 * 1024 * 1024


def _sample_records() -> tuple[list[str], list[str], list[str]]:
    """A dozen short records of different lengths, some with inputs (fast to score)."""
    instr = [
        "Name three primary colours.",
        "Translate to French.",
        "Summarise the text in one sentence.",
        "What is 12 times 7?",
        "Write a haiku about rain.",
        "Give one tip for better sleep.",
        "Classify the sentiment.",
        "Explain photosynthesis briefly.",
        "List two fruits.",
        "Correct the grammar.",
        "What is the capital of Japan?",
        "Suggest a name for a bakery.",
    ]
    inp = [
        "",
        "Good morning",
        "The meeting moved to Friday because the room was booked.",
        "",
        "",
        "",
        "I loved it!",
        "",
        "",
        "She go to school.",
        "",
        "",
    ]
    out = [
        "Red, blue and yellow.",
        "Bonjour",
        "The meeting is now on Friday since the room was taken.",
        "84",
        "Soft rain on the roof / whispers to the sleeping town / puddles hold the sky",
        "Keep a regular schedule, going to bed and waking up at the same time every day.",
        "Positive",
        "Plants use sunlight, water and carbon dioxide to make glucose and oxygen.",
        "Apple, pear.",
        "She goes to school.",
        "Tokyo.",
        "Rise & Crumb",
    ]
    return instr, inp, out
