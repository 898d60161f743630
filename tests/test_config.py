"""Settings: defaults < TOML file < environment < command-line overrides; secrets stay out."""

from __future__ import annotations

from pathlib import Path

import pytest

from curation.config import ConfigError, Settings, load_settings, secret


def test_defaults_are_the_offline_choices(tmp_path: Path) -> None:
    settings = load_settings(env={"CURATION_WORKSPACE": str(tmp_path)})
    assert settings.db_url == f"sqlite:///{(tmp_path / 'studio.db').resolve()}"
    assert settings.embed.model == "" and settings.iqs.weights == ""  # bundled models
    assert settings.llm.dimension == "accuracy" and settings.llm.concurrency == 16


def test_layers_override_in_order(tmp_path: Path) -> None:
    config = tmp_path / "curation.toml"
    config.write_text('workspace = "from-file"\n[llm]\nmodel = "file-model"\nconcurrency = 4\n[embed]\nbatch_size = 8\n')
    env = {"CURATION_CONFIG": str(config), "CURATION__LLM__MODEL": "env-model", "DATABASE_URL": "postgresql://u:pw@db/x"}
    settings = load_settings(env=env, overrides=["llm.concurrency=32", "cluster.k=7"])
    assert settings.workspace == Path("from-file")
    assert (settings.llm.model, settings.llm.concurrency, settings.embed.batch_size, settings.cluster.k) == ("env-model", 32, 8, 7)
    assert settings.db_url == "postgresql://u:pw@db/x"
    assert settings.as_dict()["database_url"] == "postgresql://u:***@db/x"
    assert settings.config_file == str(config.resolve()) and settings.overrides == ["llm.concurrency=32", "cluster.k=7"]


def test_bad_values_name_their_origin(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="command line: llm.concurrency: expected int"):
        load_settings(env={}, overrides=["llm.concurrency=many"])
    with pytest.raises(ConfigError, match="environment variable CURATION__LLM__NOPE: unknown setting"):
        load_settings(env={"CURATION__LLM__NOPE": "1"})
    bad = tmp_path / "bad.toml"
    bad.write_text("[llm\n")
    with pytest.raises(ConfigError, match="not valid TOML"):
        load_settings(bad, env={})
    with pytest.raises(ConfigError, match="section.key=value"):
        load_settings(env={}, overrides=["llm.model"])


def test_lists_and_dicts_accept_json(tmp_path: Path) -> None:
    settings = load_settings(env={"CURATION__LLM__PRICES": '{"my-model": [1.0, 2.0]}'}, overrides=['flags.placeholder_outputs=["tbd"]'])
    assert settings.llm.prices == {"my-model": [1.0, 2.0]} and settings.flags.placeholder_outputs == ["tbd"]


def test_secrets_come_from_env_or_secrets_file_and_never_from_settings(tmp_path: Path) -> None:
    secrets = tmp_path / "secrets.toml"
    secrets.write_text('OPENAI_API_KEY = "from-file"\n')
    assert secret("OPENAI_API_KEY", env={"OPENAI_API_KEY": "from-env"}, secrets_file=secrets) == "from-env"
    assert secret("OPENAI_API_KEY", env={}, secrets_file=secrets) == "from-file"
    assert secret("MISSING", env={}, secrets_file=secrets) is None
    assert "from-file" not in repr(Settings())


def test_values_are_coerced_and_checked_by_type(tmp_path: Path) -> None:
    config = tmp_path / "curation.toml"
    config.write_text('[llm]\napi_version = 2024\n[flags]\ntruncated_missing_stop = "yes"\n')
    settings = load_settings(config, env={"CURATION__CLUSTER__PCA_VARIANCE": "0.9"})
    assert settings.llm.api_version == "2024" and settings.flags.truncated_missing_stop is True
    assert settings.cluster.pca_variance == 0.9
    with pytest.raises(ConfigError, match="command line: flags.truncated_missing_stop: expected bool, got 'maybe'"):
        load_settings(env={}, overrides=["flags.truncated_missing_stop=maybe"])
    with pytest.raises(ConfigError, match="command line: flags.placeholder_outputs: expected JSON list"):
        load_settings(env={}, overrides=["flags.placeholder_outputs=tbd"])
    table = tmp_path / "table.toml"
    table.write_text("llm = 5\n")
    with pytest.raises(ConfigError, match="llm: expected a table of settings"):
        load_settings(table, env={})
    with pytest.raises(ConfigError, match="unknown setting 'nosection.key'"):
        load_settings(env={}, overrides=["nosection.key=1"])
