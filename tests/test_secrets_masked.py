"""Secret-looking config values never reach MLflow: not as params, not in run names, not in the logged config."""

from __future__ import annotations

from mlflow.tracking import MlflowClient

from orchestrator.launch import launch
from orchestrator.masking import is_secret, mask_secrets, redact


def test_names_that_look_like_secrets_are_recognised_and_data_sizes_are_not():
    for name in ("api_key", "wandb.token", "db_password", "awsSecretAccessKey", "hf-token", "KEY"):
        assert is_secret(name), name
    for name in ("tokens", "n_params", "tokens_per_param", "keyframes", "monkey", "d_model"):
        assert not is_secret(name), name
    assert mask_secrets({"a": {"api_key": "s3cr3t", "tokens": 5}, "l": [{"token": "t"}]}) == \
        {"a": {"api_key": "***", "tokens": 5}, "l": [{"token": "***"}]}


def test_the_password_of_a_url_such_as_a_postgresql_tracking_uri_is_never_written():
    assert redact("tracking.uri=postgresql://mlflow:pa:ss@db:5432/mlflow", []) == \
        "tracking.uri=postgresql://mlflow:***@db:5432/mlflow"
    assert redact('uri: "http://sweeper:hunter22@mlflow:5000"', []) == 'uri: "http://sweeper:***@mlflow:5000"'
    for text in ("postgresql://postgres:@/db?host=/run/pg", "sqlite:////tmp/a@b.db", "ann@example.com",
                 "http://host:5000/path@x"):
        assert redact(text, []) == text


def test_a_sweep_never_logs_secret_values(ray_cluster, compose, tracking_uri, tmp_path):
    summary = launch(compose("job=synthetic", "+sweep=synthetic_demo", f"tracking.uri={tracking_uri}",
                             "+job.api_key=s3cr3t-value", "+job.logger.token=t0ken-value", "~sweep.params",
                             "+sweep.params.job.n_params=[1e6,1e7]"))
    assert summary.ok
    client = MlflowClient(tracking_uri=tracking_uri)
    for child in client.search_runs([summary.experiment_id], "tags.`orchestrator.role` = 'child'"):
        assert child.data.params["api_key"] == "***" and child.data.params["logger.token"] == "***"
        assert child.data.params["tokens"] == "100000000"  # a data size, not a secret
        logged = " ".join([*child.data.params.values(), *child.data.tags.values(), child.info.run_name])
        assert "s3cr3t" not in logged and "t0ken" not in logged
    config = client.download_artifacts(summary.parent_run_id, "config.yaml", str(tmp_path))
    text = open(config).read()
    assert "s3cr3t" not in text and "t0ken" not in text and "api_key: '***'" in text


def test_a_secret_read_from_the_environment_is_never_logged_whatever_key_carries_it(ray_cluster, compose, tracking_uri,
                                                                                    monkeypatch, tmp_path):
    monkeypatch.setenv("HF_TOKEN", "hf_s3cretEnvValue42")
    summary = launch(compose("job=synthetic", "+sweep=synthetic_demo", f"tracking.uri={tracking_uri}",
                             "+job.auth=${oc.env:HF_TOKEN}", "+job.note=prefix-hf_s3cretEnvValue42", "~sweep.params",
                             "+sweep.params.job.n_params=[1e6]"))
    assert summary.ok
    client = MlflowClient(tracking_uri=tracking_uri)
    (child,) = client.search_runs([summary.experiment_id], "tags.`orchestrator.role` = 'child'")
    assert child.data.params["auth"] == "***" and child.data.params["note"] == "prefix-***"
    parent = client.get_run(summary.parent_run_id)
    logged = " ".join([*child.data.params.values(), *child.data.tags.values(), *parent.data.params.values(),
                       *parent.data.tags.values()])
    assert "hf_s3cretEnvValue42" not in logged
    assert "hf_s3cretEnvValue42" not in open(client.download_artifacts(summary.parent_run_id, "config.yaml",
                                                                       str(tmp_path))).read()
