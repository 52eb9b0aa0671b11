"""A Dagster instance and the data root it was initialised for know each other: a process
that pairs an instance with another data root is refused with the command to use, and a
command that only reads never creates an empty data root."""

import os
import subprocess
import sys
from pathlib import Path

import dagster as dg
import pytest

from clone_pipeline.defs.resources import CloneSettings
from clone_pipeline.defs.sensors import user_data_changed
from clone_pipeline.services.pairing import PairingError


@pytest.fixture
def cli(tmp_path, models_dir):
    """Run clone-pipeline (or Python) in a subprocess with the given data root and
    instance folder, HOME in the test's folder."""
    def run(*args: str, home: str, dagster_home: str | None, python: bool = False):
        env = {**os.environ, "HOME": str(tmp_path / "user"), "CLONE_MODELS_DIR":
               str(models_dir)}
        for var in ("CLONE_HOME", "DAGSTER_HOME", "CLONE_DATABASE_URL",
                    "DAGSTER_POSTGRES_URL"):
            env.pop(var, None)
        if home:
            env["CLONE_HOME"] = home
        if dagster_home:
            env["DAGSTER_HOME"] = dagster_home
        command = ["-c", *args] if python else ["-m", "clone_pipeline.cli", *args]
        return subprocess.run([sys.executable, *command], env=env, capture_output=True,
                              text=True, timeout=300)

    return run


def test_an_instance_refuses_another_data_root_with_the_command_to_use(cli, tmp_path):
    a, b, instance = tmp_path / "a", tmp_path / "b", tmp_path / "dagster"
    assert cli("init", home=str(a), dagster_home=str(instance)).returncode == 0

    for command in (["users"], ["init"], ["import", "nothing.json"]):
        refused = cli(*command, home=str(b), dagster_home=str(instance))
        assert refused.returncode == 1 and "Traceback" not in refused.stderr
        message = " ".join(refused.stderr.split())  # one line, however the console wraps
        assert f"belongs to the data root {a}" in message
        assert f"but the data root here (CLONE_HOME) is {b}" in message
        assert f"run `CLONE_HOME={a} DAGSTER_HOME={instance} CLONE_MODELS_DIR=" in message
    assert not b.exists()  # refused before anything was created

    # Loading the definitions (what `dagster dev`'s code server does) fails with that line.
    loaded = cli("import clone_pipeline.definitions", home=str(b),
                 dagster_home=str(instance), python=True)
    assert loaded.returncode != 0 and f"belongs to the data root {a}" in loaded.stderr

    # The other way round: the data root names its instance, so a fresh DAGSTER_HOME is no
    # way to read it against an empty run history.
    other = tmp_path / "other-dagster"
    refused = cli("users", home=str(a), dagster_home=str(other))
    message = " ".join(refused.stderr.split())
    assert refused.returncode == 1
    assert f"the data root {a} belongs to the Dagster instance {instance}" in message
    assert not (other / "dagster.yaml").exists()
    assert cli("users", home=str(a), dagster_home=str(instance)).returncode == 0


def test_the_sensor_refuses_a_data_root_of_another_instance(cli, tmp_path):
    """In Dagster the check uses the instance the process really has: `dagster dev` without
    DAGSTER_HOME keeps a temporary one, which is not the data root's."""
    a, b, instance_home = tmp_path / "a", tmp_path / "b", tmp_path / "dagster"
    assert cli("init", home=str(a), dagster_home=str(instance_home)).returncode == 0
    assert cli("init", home=str(b), dagster_home=str(tmp_path / "b-dagster")).returncode == 0

    def tick(instance, home):
        context = dg.build_sensor_context(instance=instance,
                                          resources={"clone": CloneSettings(home=str(home))})
        return user_data_changed(context)

    with dg.DagsterInstance.from_config(str(instance_home)) as instance:
        assert tick(instance, a).run_requests == []  # its own pair: fine
        with pytest.raises(PairingError, match=f"belongs to the data root {a}"):
            tick(instance, b)
    with dg.instance_for_test() as temporary, \
            pytest.raises(PairingError, match=f"belongs to the Dagster instance {instance_home}"):
        tick(temporary, a)


def test_a_reading_command_without_a_data_root_creates_none(cli, tmp_path):
    default_root = tmp_path / "user" / ".clone_pipeline"
    for command in (["users"], ["run", "someone"], ["remove-user", "someone", "--yes"]):
        result = cli(*command, home="", dagster_home=None)
        message = " ".join(result.stderr.split())
        assert result.returncode == 1 and "Traceback" not in result.stderr
        assert f"no data root at {default_root}: set CLONE_HOME" in message
        assert "clone-pipeline init" in message
    assert not default_root.exists()


def test_the_printed_ui_command_runs_without_an_activated_venv(tmp_path):
    from clone_pipeline.services.pairing import ui_command

    words = ui_command(tmp_path / "home", tmp_path / "dagster", tmp_path / "models").split()
    assert words[:3] == [f"CLONE_HOME={tmp_path / 'home'}",
                         f"DAGSTER_HOME={tmp_path / 'dagster'}",
                         f"CLONE_MODELS_DIR={tmp_path / 'models'}"]
    assert Path(words[3]).is_absolute() and Path(words[3]).is_file() and words[4] == "ui"
