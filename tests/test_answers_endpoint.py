"""Answers through an OpenAI-compatible endpoint (a loopback server): chat and completions, stored, not re-asked."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from llm_fault_server import FaultServer

from curation.alpaca import prompt_sha256, render_prompt
from curation.answers import GenerateRequest, generate
from curation.answers.items import answer_items
from curation.config import Settings
from curation.store import Store
from curation.studio_auth import Person
from curation.testsets import TestItem

LEAD = Person("lena", "lead")
REPO = Path(__file__).resolve().parent.parent


def test_chat_endpoint_answers_with_the_alpaca_prompt(store: Store, settings: Settings) -> None:
    with FaultServer() as server:
        request = GenerateRequest(model="served-model", testsets=["selfinstruct252"], limit=4, base_url=server.base_url,
                                  max_new_tokens=256)
        summary = generate(request, settings, store, LEAD)
        assert (summary.generated_now, summary.failed) == (4, 0)
        items = answer_items(store, ["selfinstruct252"], 4)
        sent = sorted(hit.messages[0][1] for hit in server.hits)
        assert sent == sorted(render_prompt(i.instruction, i.input) for i in items)
        answers = {a.item_id: a for a in store.answers.of("served-model", "selfinstruct252")}
        for item in items:
            answer = answers[item.item_id]
            assert answer.prompt_sha256 == prompt_sha256(item.instruction, item.input)
            assert answer.output.startswith(("0", "1", "2", "3", "4", "5")) and answer.finish_reason == "stop"
            assert answer.meta["base_url"] == server.base_url and answer.completion_tokens > 0
        again = generate(request, settings, store, LEAD)
        assert (again.generated_now, again.already_answered, len(server.hits)) == (0, 4, 4)


def test_completions_endpoint_and_truncation(sqlite_store: Store, settings: Settings) -> None:
    with FaultServer() as server:
        request = GenerateRequest(model="base-model", testsets=["vicuna80"], limit=3, base_url=server.base_url,
                                  api="completions", max_new_tokens=4)
        summary = generate(request, settings, sqlite_store, LEAD)
        assert summary.generated_now == 3 and summary.truncated == 3
        assert all(hit.path.endswith("/v1/completions") for hit in server.hits)
        answers = sqlite_store.answers.of("base-model", "vicuna80")
        # The server says how many tokens it wrote; at max_tokens the answer is marked cut.
        assert {a.finish_reason for a in answers} == {"truncated"}
        assert answers[0].decoding["api"] == "completions"


def test_failed_calls_leave_the_item_missing_for_the_next_run(sqlite_store: Store, settings: Settings) -> None:
    settings.llm.max_retries = 0
    sqlite_store.testsets.create("faulty", [TestItem("a", "What is 2 + 2? @500x1"), TestItem("b", "Name a colour.")])
    with FaultServer() as server:
        request = GenerateRequest(model="m", testsets=["faulty"], base_url=server.base_url)
        first = generate(request, settings, sqlite_store, LEAD)
        assert (first.generated_now, first.failed) == (1, 1)
        assert sqlite_store.answers.answered_ids("m", "faulty", first.decoding_hash) == {"b"}
        second = generate(request, settings, sqlite_store, LEAD)
        assert (second.already_answered, second.generated_now, second.failed) == (1, 1, 0)
        assert server.attempts("@500x1") == 2 and len(server.hits) == 3


def test_cli_generates_through_an_endpoint_and_writes_the_jsonl(tmp_path: Path) -> None:
    out = tmp_path / "answers.jsonl"
    with FaultServer() as server:
        done = subprocess.run(
            [sys.executable, "-m", "curation", "--workspace", str(tmp_path / "ws"), "generate", "--model", "served",
             "--testset", "vicuna80,koala180", "--limit", "2", "--base-url", server.base_url, "--out", str(out)],
            cwd=REPO, capture_output=True, text=True, timeout=300, check=False)
    assert done.returncode == 0, done.stderr
    assert "4 generated now" in done.stdout
    lines = [json.loads(line) for line in out.read_text().splitlines()]
    assert [(x["testset"], x["id"]) for x in lines] == [("vicuna80", "1"), ("vicuna80", "2"), ("koala180", "koala_0"),
                                                         ("koala180", "koala_1")]
