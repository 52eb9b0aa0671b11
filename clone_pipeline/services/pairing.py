"""Which data root a Dagster instance belongs to, and the refusal when a process pairs them
wrongly.

`clone-pipeline init` records the pair on both sides: `$DAGSTER_HOME/clone_pipeline.json`
names the data root and domain database (its URL without password), and
`CLONE_HOME/dagster_instance.json` names the instance folder. A process started with one
side of the pair and not the other (say `dagster dev` without CLONE_HOME, which would read an
empty ~/.clone_pipeline against an instance full of runs) is refused with the command to
use. Instances and data roots that predate the records are not checked until `init` runs.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

from clone_pipeline.db.session import safe_url
from clone_pipeline.files import write_json
from clone_pipeline.settings import Settings

INSTANCE_RECORD = "clone_pipeline.json"  # in DAGSTER_HOME
ROOT_RECORD = "dagster_instance.json"  # in CLONE_HOME


class PairingError(RuntimeError):
    """The Dagster instance and the data root of this process belong to different pairs."""


class NoDataRootError(RuntimeError):
    """A command that only reads was given a data root that does not exist."""


def require_data_root(settings: Settings) -> None:
    """Refuse, rather than create an empty one, when the data root does not exist."""
    if not settings.home.is_dir():
        raise NoDataRootError(
            f"no data root at {settings.home}: set CLONE_HOME to your data root, or create "
            f"this one with `clone-pipeline init` (or `clone-pipeline import PATH`)")


def record_pairing(settings: Settings) -> None:
    """Write both records (at init, after check_pairing)."""
    write_json(settings.dagster_home / INSTANCE_RECORD,
               {"data_root": str(settings.home),
                "database": safe_url(settings.database_url),
                "models_dir": str(settings.models_dir)})
    write_json(settings.home / ROOT_RECORD, {"dagster_home": str(settings.dagster_home)})


def check_pairing(settings: Settings, dagster_home: Path | None = None) -> None:
    """Raise PairingError unless *settings* and the instance at *dagster_home* (default
    settings.dagster_home, i.e. DAGSTER_HOME) were initialised together, or either side has
    no record yet."""
    home = Path(dagster_home or settings.dagster_home).resolve()
    database = safe_url(settings.database_url)
    paired = _read(home / INSTANCE_RECORD)
    if paired and (paired["data_root"], paired["database"]) != (str(settings.home), database):
        ours = (f"the data root here (CLONE_HOME) is {settings.home}"
                if paired["data_root"] != str(settings.home)
                else f"the domain database here (CLONE_DATABASE_URL) is {database}")
        raise PairingError(
            f"this Dagster instance (DAGSTER_HOME={home}) belongs to the data root "
            f"{paired['data_root']} (domain database {paired['database']}), but {ours}: "
            + _suggestion(Path(paired["data_root"]), home, Path(paired["models_dir"]),
                          paired["database"]))
    root = _read(settings.home / ROOT_RECORD)
    if root and root["dagster_home"] != str(home):
        raise PairingError(
            f"the data root {settings.home} belongs to the Dagster instance "
            f"{root['dagster_home']}, but DAGSTER_HOME is {home}: "
            + _suggestion(settings.home, Path(root["dagster_home"]), settings.models_dir,
                          database))


def ui_command(data_root: Path, dagster_home: Path, models_dir: Path) -> str:
    """The command that opens the Dagster UI on this pair, with every variable it needs and
    this environment's own `clone-pipeline` (a copied line works without an activated venv)."""
    script = Path(sys.executable).with_name("clone-pipeline")
    return (f"CLONE_HOME={data_root} DAGSTER_HOME={dagster_home} "
            f"CLONE_MODELS_DIR={models_dir} "
            f"{script if script.is_file() else 'clone-pipeline'} ui")


def _suggestion(data_root: Path, dagster_home: Path, models_dir: Path, database: str) -> str:
    text = f"run `{ui_command(data_root, dagster_home, models_dir)}`"
    if database != safe_url(f"sqlite:///{data_root / 'clone.db'}"):
        # A URL may hold a password: it is named without it, for the user to export.
        text += f" with CLONE_DATABASE_URL={database} exported"
    if data_root.name == ".clone_home":  # the Makefile's data root, in a checkout
        text += f" (or `make ui` in {data_root.parent})"
    return text


def _read(path: Path) -> dict | None:
    return json.loads(path.read_text(encoding="utf-8")) if path.is_file() else None
