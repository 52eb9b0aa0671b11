"""The data-root layout refuses ids that would escape it, and writes are all-or-nothing."""

import os
import re
import subprocess
import sys

import pytest

from clone_pipeline.files import (
    UnsafePathError,
    atomic_path,
    check_id,
    data_file,
    user_folder,
)
from clone_pipeline.ingest.schema import ID_PATTERN
from clone_pipeline.settings import load_settings

HOSTILE_IDS = [".", "..", "...", "evil\n", "a/b", "../x", "", "-lead", ".hidden", "a" * 129,
               "x\x00y", "tab\tid"]


@pytest.mark.parametrize("external_id", HOSTILE_IDS, ids=repr)
def test_ids_that_could_leave_the_data_root_are_refused(tmp_path, external_id):
    settings = load_settings({"CLONE_HOME": str(tmp_path)})
    with pytest.raises(UnsafePathError):
        user_folder(settings, "voice", external_id)
    assert re.search(ID_PATTERN, external_id) is None  # the export schema agrees


def test_a_user_folder_is_exactly_one_level_inside_its_kind(tmp_path):
    settings = load_settings({"CLONE_HOME": str(tmp_path)})
    folder = user_folder(settings, "datasets", "margaret-ellis")
    assert folder == (tmp_path / "datasets" / "margaret-ellis").resolve()
    assert check_id("walter.okafor_2") == "walter.okafor_2"


@pytest.mark.parametrize("recorded", ["../outside.wav", "/etc/passwd", "audio/../..", "."])
def test_a_recorded_path_that_leaves_the_data_root_is_refused(tmp_path, recorded):
    settings = load_settings({"CLONE_HOME": str(tmp_path / "home")})
    with pytest.raises(UnsafePathError):
        data_file(settings, recorded)
    inside = data_file(settings, "audio/margaret-ellis/ab.flac")
    assert inside == (tmp_path / "home" / "audio" / "margaret-ellis" / "ab.flac").resolve()


def test_atomic_path_leaves_the_old_content_when_writing_fails(tmp_path):
    target = tmp_path / "profile.json"
    target.write_text("old")
    with pytest.raises(RuntimeError), atomic_path(target) as tmp:
        tmp.write_text("half")
        raise RuntimeError("disk full")
    assert target.read_text() == "old"
    assert [p.name for p in tmp_path.iterdir()] == ["profile.json"]  # no temporary left


def test_atomic_path_swaps_a_whole_folder(tmp_path):
    target = tmp_path / "adapter"
    target.mkdir()
    (target / "stale.bin").write_text("v1")
    with atomic_path(target) as tmp:
        tmp.mkdir()
        (tmp / "weights.bin").write_text("v2")
    assert [p.name for p in target.iterdir()] == ["weights.bin"]
    assert [p.name for p in tmp_path.iterdir()] == ["adapter"]


def test_plots_write_nothing_under_home(tmp_path):
    home = tmp_path / "home"
    home.mkdir()
    env = {k: v for k, v in os.environ.items() if k != "MPLCONFIGDIR"}
    script = ("from pathlib import Path\n"
              "from clone_pipeline.training.plots import loss_curve_png\n"
              "loss_curve_png([{'step': 1, 'loss': 2.0}, {'step': 2, 'loss': 1.5}],\n"
              f"               Path({str(tmp_path / 'loss.png')!r}), 'loss')\n")
    done = subprocess.run([sys.executable, "-c", script], env={**env, "HOME": str(home)},
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert (tmp_path / "loss.png").stat().st_size > 0
    assert list(home.iterdir()) == []  # no ~/.config/matplotlib or ~/.cache
