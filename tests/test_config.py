"""Config precedence, provenance and one-line errors."""

from __future__ import annotations

import pytest

from engine.config import ConfigError, load_settings


def write(tmp_path, text: str):
    path = tmp_path / "seawall.toml"
    path.write_text(text)
    return path


def test_defaults_match_the_documented_values():
    s = load_settings(env={}).settings
    assert s.redis_url is None and s.embedded
    assert (s.namespace, s.queue) == ("seawall", "default")
    assert (s.result_queue_ttl_seconds, s.worker_result_ttl_seconds) == (7200, 3600)
    assert (s.blpop_timeout_seconds, s.queue_circuit_breaker_threshold, s.breaker_reset_seconds) == (1, 5, 10)
    assert (s.enqueue_max_retries, s.backoff_base_seconds, s.backoff_cap_seconds) == (5, 0.1, 5)
    assert (s.job_timeout_seconds, s.max_attempts, s.max_payload_bytes) == (300, 3, 1024 * 1024)
    assert (s.dlq_max_entries, s.dlq_ttl_seconds) == (10_000, 7 * 24 * 3600)
    assert (s.heartbeat_seconds, s.lease_seconds) == (5, 15)


def test_precedence_cli_over_env_over_file_over_default(tmp_path):
    path = write(tmp_path, 'queue = "fromfile"\nnamespace = "filens"\nmax_attempts = 7\n')
    env = {"SEAWALL_QUEUE": "fromenv", "SEAWALL_NAMESPACE": "envns"}
    loaded = load_settings({"queue": "fromcli"}, config_file=path, env=env)
    s = loaded.settings
    assert (s.queue, s.namespace, s.max_attempts, s.lease_seconds) == ("fromcli", "envns", 7, 15)
    assert loaded.sources["queue"] == "command line --queue"
    assert loaded.sources["namespace"] == "environment SEAWALL_NAMESPACE"
    assert loaded.sources["max_attempts"] == f"config file {path}"
    assert "lease_seconds" not in loaded.sources


def test_default_config_file_is_read_from_the_user_config_dir(monkeypatch, tmp_path):
    from engine.config import default_config_path

    path = default_config_path()
    path.parent.mkdir(parents=True)
    path.write_text("max_attempts = 9\n")
    loaded = load_settings(env={})
    assert loaded.settings.max_attempts == 9 and loaded.config_file == path


@pytest.mark.parametrize(
    ("env", "needles"),
    [
        ({"SEAWALL_RESULT_QUEUE_TTL_SECONDS": "-5"}, ["result_queue_ttl_seconds", "'-5'", "SEAWALL_RESULT_QUEUE_TTL_SECONDS", "greater than 0"]),
        ({"SEAWALL_QUEUE_CIRCUIT_BREAKER_THRESHOLD": "0"}, ["queue_circuit_breaker_threshold", "'0'", ">= 1"]),
        ({"SEAWALL_REDIS_URL": "redis://:hunter2@host:notaport"}, ["redis_url", "redis://:***@host:notaport", "not a URL"]),
        ({"SEAWALL_REDIS_URL": "http://localhost"}, ["redis_url", "scheme must be"]),
        ({"SEAWALL_MAX_ATTEMPTS": "three"}, ["max_attempts", "'three'", "integer"]),
    ],
)
def test_bad_values_name_field_value_source_and_allowed(env, needles):
    with pytest.raises(ConfigError) as err:
        load_settings(env=env)
    message = str(err.value)
    assert "\n" not in message
    for needle in needles:
        assert needle in message
    assert "hunter2" not in message


def test_unknown_key_in_toml_is_refused(tmp_path):
    path = write(tmp_path, "queue_name = 'x'\n")
    with pytest.raises(ConfigError, match=r"unknown key 'queue_name'"):
        load_settings(config_file=path, env={})


def test_a_misspelt_environment_variable_is_refused_with_a_suggestion():
    with pytest.raises(ConfigError, match=r"SEAWALL_REDIS_ULR is not a Seawall setting \(did you mean SEAWALL_REDIS_URL\?\)"):
        load_settings(env={"SEAWALL_REDIS_ULR": "redis://10.0.0.5:6379/0"}, config_file=None)
    assert load_settings(env={"SEAWALLET": "not ours", "HOME": "/x"}, config_file=None).settings.queue == "default"


def test_bad_toml_and_missing_file_are_one_line(tmp_path):
    with pytest.raises(ConfigError, match="not valid TOML"):
        load_settings(config_file=write(tmp_path, "queue = \n"), env={})
    with pytest.raises(ConfigError, match="not found"):
        load_settings(config_file=tmp_path / "nope.toml", env={})


def test_bad_value_in_toml_names_the_file(tmp_path):
    path = write(tmp_path, "dlq_ttl_seconds = -1\n")
    with pytest.raises(ConfigError, match=rf"dlq_ttl_seconds = -1 \(from config file {path}\)"):
        load_settings(config_file=path, env={})


def test_lease_must_outlast_heartbeat():
    with pytest.raises(ConfigError, match="lease_seconds"):
        load_settings({"lease_seconds": 2, "heartbeat_seconds": 5}, env={})


def test_describe_masks_the_password():
    loaded = load_settings({"redis_url": "redis://app:s3cret@db:6379/0"}, env={})
    rows = dict((name, value) for name, value, _ in loaded.describe())
    assert rows["redis_url"] == "redis://app:***@db:6379/0"


def test_backoff_base_above_its_cap_is_refused():
    with pytest.raises(ConfigError, match="backoff_base_seconds = 10.0 .* above backoff_cap_seconds = 1.0"):
        load_settings({"backoff_base_seconds": 10, "backoff_cap_seconds": 1}, env={})
