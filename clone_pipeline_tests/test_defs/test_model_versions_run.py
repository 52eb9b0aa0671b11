"""Model versions through real runs from the command line: `run` prints the run id as the
run starts and the figures and verdict of what it trained; a worse second version is not
promoted (compared on its own held-out questions, the current version re-evaluated on
them); `promote` overrides; `runs` lists the runs and what they made."""

import dagster as dg
import pytest
import yaml
from click.testing import CliRunner

from clone_pipeline.cli import main
from clone_pipeline.defs.metadata import UI_INLINE_MARKDOWN
from clone_pipeline.demo import PERSONAS_DIR
from clone_pipeline.launch.launch import run_job_for_user
from clone_pipeline.services.ingest import import_export

USER = "walter-okafor"
TRAIN = {"max_steps": 6, "batch_size": 4, "context_length": 512, "learning_rate": 3e-3,
         "eval_steps": 3, "min_free_disk_gb": 0.1}


@pytest.fixture
def cli_env(tmp_path, monkeypatch):
    """The CLI's Dagster instance in the test's folder (the CLI reads DAGSTER_HOME)."""
    monkeypatch.setenv("DAGSTER_HOME", str(tmp_path / "dagster"))
    return CliRunner()


def _lines_with(output: str, text: str) -> list[int]:
    return [i for i, line in enumerate(output.splitlines()) if text in line]


def test_run_prints_the_run_id_before_the_run_executes(env_settings, import_persona,
                                                      instance, cli_env):
    import_persona(USER)
    seen = {}

    def on_start(run_id):
        seen[run_id] = instance.get_run_by_id(run_id)  # not created yet, so not ended

    outcome = run_job_for_user(instance, "data_only", USER, on_start=on_start)
    assert seen == {outcome.run_id: None} and outcome.success

    result = cli_env.invoke(main, ["run", USER])
    assert result.exit_code == 0, result.output
    [started] = _lines_with(result.output, "started (data_only)")
    run_id = result.output.splitlines()[started].split("run ")[1].split()[0]
    assert _lines_with(result.output, f"run {run_id} succeeded") > [started]

    listed = cli_env.invoke(main, ["runs", USER])
    assert listed.exit_code == 0, listed.output
    [row] = _lines_with(listed.output, run_id)
    assert "data_only" in listed.output.splitlines()[row]
    assert "succeeded" in listed.output.splitlines()[row]
    assert "collected_training_data" in listed.output
    waiting = cli_env.invoke(main, ["progress", run_id, "--no-follow"])
    assert waiting.exit_code == 1
    assert f"Dagster run {run_id} is succeeded and has no training step" in waiting.output
    unknown = cli_env.invoke(main, ["progress", "nope", "--no-follow"])
    assert unknown.exit_code == 1 and "no training run or Dagster run 'nope'" in unknown.output


def _config(tmp_path, name, train, seed=0):
    path = tmp_path / f"{name}.yaml"
    path.write_text(yaml.safe_dump({"ops": {
        "trained_adapter": {"config": train},
        "formatted_datasets": {"config": {"formats": ["conversational"], "seed": seed}}}}))
    return str(path)


@pytest.mark.slow
@pytest.mark.timeout(2400)  # local-tiny on first use, two trainings, three evaluations
def test_a_worse_second_version_stays_out_until_promoted_by_hand(sqlite_env_settings,
                                                                 cli_env, tmp_path):
    import_export(PERSONAS_DIR / USER, sqlite_env_settings)
    first = cli_env.invoke(main, ["run", USER, "--job", "complete_workflow", "--config",
                                  _config(tmp_path, "good", TRAIN)])
    print(first.output)
    assert first.exit_code == 0, first.output
    assert "trained v1: held-out perplexity" in first.output
    assert "current: auto: promoted v1: first version that beats its base" in first.output

    # Another held-out split (seed 1) and a weaker training: v1 is measured on v2's questions
    weak = {**TRAIN, "max_steps": 2, "learning_rate": 1e-3}
    second = cli_env.invoke(main, ["run", USER, "--job", "complete_workflow", "--config",
                                   _config(tmp_path, "weak", weak, seed=1)])
    print(second.output)
    assert "trained v2: held-out perplexity" in second.output
    assert "not current: kept v1: v2's held-out perplexity" in second.output
    assert "(lower is better; v1 re-evaluated on v2's held-out questions)" in second.output

    instance = dg.DagsterInstance.get()
    [evaluation] = instance.fetch_materializations(dg.AssetKey("model_evaluation"),
                                                   limit=1).records
    metadata = evaluation.asset_materialization.metadata
    assert metadata["verdict"].value.startswith("kept v1: v2's held-out perplexity")
    assert metadata["promoted"].value is False
    assert "perplexity and style distance: lower is better" in metadata["direction"].value
    [trained] = instance.fetch_materializations(dg.AssetKey("trained_adapter"),
                                                limit=1).records
    curve = trained.asset_materialization.metadata["loss_curve"].value
    assert curve.startswith("![chart](data:image/svg+xml,") and len(curve) < UI_INLINE_MARKDOWN

    models = cli_env.invoke(main, ["models", USER])
    print(models.output)
    assert models.exit_code == 0, models.output
    current = [line for line in models.output.splitlines() if "current" in line.split("│")[2:3]
               or "│ current" in line]
    assert len(current) == 1 and "v1" in current[0]
    promoted = cli_env.invoke(main, ["promote", USER, "v2"])
    assert promoted.exit_code == 0 and "v2 is current (manual: promoted by hand (current " \
        "was v1))" in promoted.output
    runs = cli_env.invoke(main, ["runs", USER])
    print(runs.output)
    assert runs.output.count("complete_workflow") == 2 and "model_evaluation" in runs.output


@pytest.mark.parametrize("command", ["models", "promote", "runs"])
def test_new_commands_have_help(command):
    result = CliRunner().invoke(main, [command, "--help"])
    assert result.exit_code == 0 and "Usage:" in result.output
