"""Answer generation with a tiny random llama: batches, stored answers, prompt hashes, cancel and resume."""

from __future__ import annotations

import json
import threading
import time
from pathlib import Path

import pytest

from curation import jobs
from curation.alpaca import prompt_sha256, render_prompt
from curation.answers import GenerateError, GenerateRequest, generate, start_generation
from curation.answers.decoding import Decoding
from curation.answers.generators import LocalGenerator, length_sorted_batches
from curation.answers.items import answer_items
from curation.answers.models import ModelError, resolve_model
from curation.answers.run import run_generation
from curation.config import Settings
from curation.jobs import JobCancelled
from curation.store import Store
from curation.studio_auth import Forbidden, Person

LEAD = Person("lena", "lead")
ANNOTATOR = Person("ann", "annotator")
CORPUS = [
    "How can I improve my time management skills? What are the most effective ways to deal with stress?",
    "Rewrite the sentence and make your writing clearer. Below is an instruction that describes a task.",
    "### Instruction: ### Input: ### Response: Write a response that appropriately completes the request.",
]


def build_tiny_llama(folder: Path, seed: int = 0) -> Path:
    """A 2-layer llama with random weights and a small byte-level BPE tokenizer: a real model, fast."""
    import torch
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import LlamaConfig, LlamaForCausalLM, PreTrainedTokenizerFast

    bpe = Tokenizer(models.BPE())
    bpe.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    bpe.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(vocab_size=400, special_tokens=["<pad>", "<s>", "</s>"],
                                  initial_alphabet=pre_tokenizers.ByteLevel.alphabet())
    bpe.train_from_iterator(CORPUS * 20, trainer)
    tokenizer = PreTrainedTokenizerFast(tokenizer_object=bpe, bos_token="<s>", eos_token="</s>", pad_token="<pad>")
    config = LlamaConfig(vocab_size=len(tokenizer), hidden_size=64, intermediate_size=128, num_hidden_layers=2,
                         num_attention_heads=4, num_key_value_heads=2, max_position_embeddings=1024,
                         bos_token_id=tokenizer.bos_token_id, eos_token_id=tokenizer.eos_token_id,
                         pad_token_id=tokenizer.pad_token_id)
    torch.manual_seed(seed)
    LlamaForCausalLM(config).save_pretrained(folder)
    tokenizer.save_pretrained(folder)
    return folder


@pytest.fixture(scope="module")
def tiny_model(tmp_path_factory: pytest.TempPathFactory) -> str:
    return str(build_tiny_llama(tmp_path_factory.mktemp("tiny") / "tiny-llama"))


def fast(settings: Settings, batch_size: int = 4) -> Settings:
    settings.generate.batch_size = batch_size
    settings.generate.dtype = "float32"
    return settings


def test_ten_items_are_answered_stored_and_written_with_the_training_prompt_hash(
        store: Store, settings: Settings, tiny_model: str, tmp_path: Path) -> None:
    out = tmp_path / "answers.jsonl"
    request = GenerateRequest(model=tiny_model, testsets=["vicuna80", "selfinstruct252"], limit=5, max_new_tokens=12,
                              out=str(out))
    summary = generate(request, fast(settings), store, LEAD)

    assert (summary.items, summary.generated_now, summary.already_answered) == (10, 10, 0)
    items = {(i.testset, i.item_id): i for i in answer_items(store, ["vicuna80", "selfinstruct252"], 5)}
    assert sum(1 for i in items.values() if i.input) >= 3  # Self-Instruct items carry an input
    stored = [a for name in ("vicuna80", "selfinstruct252") for a in store.answers.of(tiny_model, name)]
    assert len(stored) == 10
    for answer in stored:
        item = items[(answer.testset, answer.item_id)]
        # The one template function training uses: the same text, the same hash.
        assert answer.prompt_sha256 == prompt_sha256(item.instruction, item.input)
        assert answer.decoding_hash == summary.decoding_hash and answer.decoding["max_new_tokens"] == 12
        assert answer.finish_reason in ("stop", "truncated") and answer.prompt_tokens > 20
        assert (answer.finish_reason == "truncated") == (answer.completion_tokens == 12)
        assert answer.created_by == "lena" and answer.seconds > 0
    lines = [json.loads(line) for line in out.read_text().splitlines()]
    assert [(x["testset"], x["id"]) for x in lines] == list(items)  # test-set order
    assert set(lines[0]) >= {"id", "testset", "instruction", "input", "output", "category", "finish_reason",
                             "prompt_sha256"}
    assert lines[5]["input"] and lines[5]["prompt_sha256"] == prompt_sha256(lines[5]["instruction"], lines[5]["input"])
    assert lines[0]["category"] == "generic"

    again = generate(request, settings, store, LEAD)
    assert (again.generated_now, again.already_answered) == (0, 10)


def test_a_cancelled_run_resumes_with_only_the_missing_answers(
        sqlite_store: Store, settings: Settings, tiny_model: str) -> None:
    request = GenerateRequest(model=tiny_model, testsets=["vicuna80"], limit=10, max_new_tokens=6)

    def cancel_after_two_batches(done: int, total: int, message: str = "") -> None:
        if done >= 6:
            raise JobCancelled()

    with pytest.raises(JobCancelled):
        run_generation(request, fast(settings, batch_size=3), sqlite_store, progress=cancel_after_two_batches)
    first = {a.item_id: a for a in sqlite_store.answers.of(tiny_model, "vicuna80")}
    assert len(first) == 6

    summary = run_generation(request, settings, sqlite_store)
    assert (summary.already_answered, summary.generated_now) == (6, 4)
    after = {a.item_id: a for a in sqlite_store.answers.of(tiny_model, "vicuna80")}
    assert len(after) == 10
    assert all(after[i] == first[i] for i in first)  # the first answers were not regenerated


def test_the_generate_job_is_cancelled_mid_run_and_resumed(sqlite_store: Store, settings: Settings,
                                                           tiny_model: str) -> None:
    settings = fast(settings, batch_size=1)
    settings.jobs.heartbeat_s = 0.05
    request = GenerateRequest(model=tiny_model, testsets=["vicuna80"], limit=6, max_new_tokens=64)
    job_id = jobs.submit(sqlite_store, settings, "generate", request.as_params(), request.title(), by=LEAD)
    worker = threading.Thread(target=jobs.run, args=(sqlite_store, settings, job_id))
    worker.start()
    deadline = time.monotonic() + 300
    while len(sqlite_store.answers.answered_ids(tiny_model, "vicuna80", _hash(settings, request))) < 1:
        assert time.monotonic() < deadline and worker.is_alive(), "the job stored no answers"
        time.sleep(0.01)
    jobs.cancel(sqlite_store, settings, job_id, by=LEAD)
    worker.join(timeout=300)
    info = jobs.get(sqlite_store, settings, job_id)
    before = sqlite_store.answers.answered_ids(tiny_model, "vicuna80", _hash(settings, request))
    assert info.status == "cancelled" and 1 <= len(before) < 6, (info.status, len(before))

    jobs.resume(sqlite_store, settings, job_id, by=LEAD, launch_worker=False)
    info = jobs.run(sqlite_store, settings, job_id)
    assert info.status == "done", info.error
    assert info.result["already_answered"] == len(before)
    assert info.result["generated_now"] == 6 - len(before)
    assert info.done == info.total == 6


def _hash(settings: Settings, request: GenerateRequest) -> str:
    return request.decoding(settings, local=True).hash


def test_batched_greedy_answers_equal_one_at_a_time(sqlite_store: Store, settings: Settings, tiny_model: str) -> None:
    """Left padding and the attention mask make a batch answer exactly what each prompt alone would."""
    items = answer_items(sqlite_store, ["selfinstruct252"], 6)  # prompts of different lengths
    decoding = Decoding(max_new_tokens=10, dtype="float32")
    spec = resolve_model(tiny_model, fast(settings))
    answers: dict[int, dict[str, str]] = {1: {}, 6: {}}
    for size, outputs in answers.items():
        generator = LocalGenerator.load(spec, settings)
        generator.batch_size = size
        generator.run(items, decoding, lambda batch, outputs=outputs: outputs.update(
            {g.item.item_id: g.output for g in batch}))
    assert answers[6] == answers[1] and len(answers[1]) == 6


def test_batches_are_length_sorted_and_one_temperature_each() -> None:
    ids = [[1] * 5, [1] * 9, [1] * 2, [1] * 7, [1] * 3]
    temperatures = [0.0, 0.7, 0.0, 0.0, 0.7]
    assert length_sorted_batches(ids, temperatures, 2) == [[3, 0], [2], [1, 4]]


def test_per_category_temperature_follows_mt_bench(settings: Settings) -> None:
    decoding = GenerateRequest(model="m", testsets=["mtbench80"], per_category_temperature=True).decoding(settings, True)
    assert [decoding.temperature_for(c) for c in ("writing", "Roleplay", "math", "stem", "humanities", None)] == [
        0.7, 0.7, 0.0, 0.1, 0.1, 0.0]
    plain = GenerateRequest(model="m", testsets=["mtbench80"]).decoding(settings, True)
    assert plain.temperature_for("writing") == 0.0 and plain.hash != decoding.hash


def test_an_adapter_folder_answers_on_its_base_model(sqlite_store: Store, settings: Settings, tiny_model: str,
                                                     tmp_path: Path) -> None:
    from peft import LoraConfig, get_peft_model
    from transformers import AutoModelForCausalLM

    base = AutoModelForCausalLM.from_pretrained(tiny_model)
    adapter = tmp_path / "run" / "adapter"
    get_peft_model(base, LoraConfig(r=4, target_modules=["q_proj", "v_proj"])).save_pretrained(adapter)
    spec = resolve_model(str(tmp_path / "run"), settings)
    assert (spec.weights, spec.adapter) == (str(Path(tiny_model).resolve()), str(adapter))

    request = GenerateRequest(model=str(tmp_path / "run"), testsets=["vicuna80"], limit=2, max_new_tokens=4)
    summary = generate(request, fast(settings), sqlite_store, LEAD)
    assert summary.generated_now == 2
    assert all(a.meta["adapter"] == str(adapter) for a in sqlite_store.answers.of(spec.model_id, "vicuna80"))

    # The same adapter as a registry model (what `python -m training sft` records), by name or by #id.
    sqlite_store.models.record(str(tmp_path / "run"), name="tiny-sft", status="running", method="lora")
    with pytest.raises(ModelError, match="no finished weights yet"):
        resolve_model("tiny-sft", settings, store=sqlite_store)
    info = sqlite_store.models.record(str(tmp_path / "run"), status="done", base_model=tiny_model,
                                      base_model_path=tiny_model, adapter_path=str(adapter))
    for name in ("tiny-sft", f"#{info.id}"):
        registered = resolve_model(name, settings, store=sqlite_store)
        assert (registered.model_id, registered.weights, registered.adapter) == (
            f"tiny-sft #{info.id}", str(Path(tiny_model).resolve()), str(adapter))
    with pytest.raises(ModelError, match="no trained model #999"):
        resolve_model("#999", settings, store=sqlite_store)


def test_only_a_lead_generates(sqlite_store: Store, settings: Settings) -> None:
    request = GenerateRequest(model="smollm2-135m", testsets=["vicuna80"], limit=1)
    with pytest.raises(Forbidden, match="Only a lead"):
        generate(request, settings, sqlite_store, ANNOTATOR)
    with pytest.raises(Forbidden, match="Sign in"):
        start_generation(request, settings, sqlite_store, None)


def test_bad_requests_say_what_to_change(settings: Settings, tmp_path: Path) -> None:
    with pytest.raises(GenerateError, match="at least one test set"):
        GenerateRequest(model="m", testsets="")
    with pytest.raises(GenerateError, match="prompt format"):
        GenerateRequest(model="m", testsets="vicuna80", prompt_format="vicuna").decoding(settings, True)
    (tmp_path / "empty").mkdir()
    with pytest.raises(ModelError, match="neither adapter_config.json"):
        resolve_model(str(tmp_path / "empty"), settings)
    assert resolve_model("gpt-4o", settings, "http://127.0.0.1:9/v1").kind == "endpoint"
    assert render_prompt("q").endswith("### Response:\n")
