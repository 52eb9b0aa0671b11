"""Shared fixtures: a temporary data root, SQLite and a real PostgreSQL database per session."""

from __future__ import annotations

import copy
import json
import os
import shutil
import subprocess
import sys
import time
import uuid
from pathlib import Path

# The suite trains on local-tiny (seconds a run) wherever a test names no base model: set
# before the project is imported (the default is read at import), and inherited by every
# process a test starts. The tests of the real default base name it themselves.
os.environ["CLONE_BASE_MODEL"] = "local-tiny"

import pytest  # noqa: E402
from sqlalchemy import create_engine, text  # noqa: E402

from clone_pipeline.demo import PERSONAS_DIR  # noqa: E402
from clone_pipeline.settings import Settings, load_settings  # noqa: E402

PG_ADMIN_URL = os.environ.get("CLONE_TEST_PG_ADMIN_URL",
                              "postgresql+psycopg2://postgres@127.0.0.1:5432/postgres")


@pytest.fixture(autouse=True)
def _no_outer_data_root(monkeypatch, tmp_path_factory):
    """`make test` exports the checkout's CLONE_HOME and DAGSTER_HOME (the demo's pair). No
    test may read, write or pair them: a test names its own data root, and the instance then
    defaults to one inside it; a test that names none gets an empty path under the temp
    folder, never the demo's or ~/.clone_pipeline."""
    for name in ("DAGSTER_HOME", "CLONE_DATABASE_URL", "CLONE_MODELS_DIR", "CLONE_ENGINE_URL",
                 "CLONE_ENGINE_KEY", "CLONE_CACHE_URL"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("CLONE_HOME", str(tmp_path_factory.getbasetemp() / "no-data-root"))


@pytest.fixture(scope="session")
def models_dir(tmp_path_factory) -> Path:
    """One tokenizer and base-model build for the whole session (keyed by recipe hash).
    CLONE_TEST_MODELS_DIR keeps them between sessions for the inner loop (CI sets none)."""
    kept = os.environ.get("CLONE_TEST_MODELS_DIR")
    return Path(kept) if kept else tmp_path_factory.mktemp("models")


_BUILDS: list[tuple[subprocess.Popen, Path]] = []  # the background build and its log


@pytest.fixture(scope="session", autouse=True)
def _base_builds(request, models_dir, tmp_path_factory):
    """Start building the bases this session's tests use (base_builds.py) while the first
    tests run; the local_tiny and smollm2 fixtures wait for it."""
    from clone_pipeline_tests.base_builds import BUILDS

    needed = [name for name in BUILDS
              if any(name in item.fixturenames for item in request.session.items)]
    if needed:
        log = tmp_path_factory.getbasetemp() / "base-builds.log"
        with log.open("w") as out:
            _BUILDS.append((subprocess.Popen(
                [sys.executable, "-m", "clone_pipeline_tests.base_builds", str(models_dir),
                 *needed], stdout=out, stderr=subprocess.STDOUT), log))
    yield
    for process, _log in _BUILDS:
        if process.poll() is None:
            process.kill()
        process.wait()


def _built(name: str) -> None:
    """Wait until the background process has built *name* or ended (the caller's own call
    then finds the build, or makes it and fails there with the real error)."""
    for process, log in _BUILDS:
        deadline = time.monotonic() + 900
        while (process.poll() is None and time.monotonic() < deadline
               and f"built {name}" not in log.read_text()):
            time.sleep(0.5)


@pytest.fixture(scope="session")
def local_tiny(models_dir):
    """The real local-tiny base, pretrained once per session (about a minute on 2 cores)."""
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from clone_pipeline.training.local_tiny import ensure_base_model

    _built("local_tiny")
    path = ensure_base_model(models_dir)
    return (AutoModelForCausalLM.from_pretrained(path, local_files_only=True).eval(),
            AutoTokenizer.from_pretrained(path, local_files_only=True), path)


@pytest.fixture(scope="session")
def smollm2(models_dir) -> Path:
    """The default base, SmolLM2-135M-Instruct, converted once per session from the package
    set-up installs (about 20 s)."""
    from clone_pipeline.training.smollm2 import ensure_base_model

    _built("smollm2")
    return ensure_base_model(models_dir)


def _settings(home: Path, models_dir: Path, database_url: str | None = None) -> Settings:
    env = {"CLONE_HOME": str(home), "CLONE_MODELS_DIR": str(models_dir)}
    if database_url:
        env["CLONE_DATABASE_URL"] = database_url
    return load_settings(env)


def _postgres_reachable() -> bool:
    """Whether the PostgreSQL server answers. In CI a missing server is a failure."""
    try:
        with create_engine(PG_ADMIN_URL).connect() as conn:
            conn.execute(text("select 1"))
    except Exception as exc:  # noqa: BLE001 - any connection problem means "no server"
        if os.environ.get("CI"):
            raise RuntimeError(f"PostgreSQL is required in CI: {exc}") from exc
        return False
    return True


def _admin(sql: str) -> None:
    engine = create_engine(PG_ADMIN_URL, isolation_level="AUTOCOMMIT")
    with engine.connect() as conn:
        conn.execute(text(sql))
    engine.dispose()


def _create_pg_database() -> str:
    """A fresh, empty database on the server; returns its URL."""
    name = f"clone_test_{uuid.uuid4().hex[:10]}"
    _admin(f'CREATE DATABASE "{name}"')
    return PG_ADMIN_URL.rsplit("/", 1)[0] + f"/{name}"


def _drop_pg_database(url: str) -> None:
    _admin(f'DROP DATABASE IF EXISTS "{url.rsplit("/", 1)[1]}" WITH (FORCE)')


@pytest.fixture(scope="session")
def pg_server() -> str:
    """Admin URL of the PostgreSQL server (skips the test locally when it does not answer)."""
    if not _postgres_reachable():
        pytest.skip(f"PostgreSQL not reachable at {PG_ADMIN_URL}")
    return PG_ADMIN_URL


@pytest.fixture
def new_pg_database(pg_server):
    """Factory of fresh, empty PostgreSQL databases; all dropped after the test."""
    from clone_pipeline.db.session import get_engine

    created: list[str] = []

    def create() -> str:
        created.append(_create_pg_database())
        return created[-1]

    yield create
    for url in created:
        get_engine(url).dispose()
        _drop_pg_database(url)
    get_engine.cache_clear()


@pytest.fixture
def pg_database(new_pg_database) -> str:
    """A fresh, empty PostgreSQL database for one test."""
    return new_pg_database()


@pytest.fixture(params=["sqlite", "postgres"])
def settings(request, tmp_path, models_dir) -> Settings:
    """Settings on a temporary data root, once with SQLite and once with PostgreSQL."""
    url = request.getfixturevalue("pg_database") if request.param == "postgres" else None
    s = _settings(tmp_path / "home", models_dir, url)
    s.ensure_dirs()
    from clone_pipeline.db.session import migrate

    migrate(s.database_url)
    return s


@pytest.fixture
def sqlite_settings(tmp_path, models_dir) -> Settings:
    s = _settings(tmp_path / "home", models_dir)
    s.ensure_dirs()
    from clone_pipeline.db.session import migrate

    migrate(s.database_url)
    return s


def load_persona(name: str) -> dict:
    return json.loads((PERSONAS_DIR / name / "export.json").read_text(encoding="utf-8"))


@pytest.fixture
def write_export(tmp_path):
    """Write an export document (and copy the persona's audio) into a fresh folder."""
    counter = iter(range(10_000))

    def write(doc: dict, audio_from: str | None = None, raw: bytes | None = None) -> Path:
        folder = tmp_path / f"export-{next(counter)}"
        folder.mkdir()
        if audio_from:
            shutil.copytree(PERSONAS_DIR / audio_from / "audio", folder / "audio")
        path = folder / "export.json"
        path.write_bytes(raw if raw is not None
                         else json.dumps(doc, ensure_ascii=False).encode("utf-8"))
        return path

    return write


@pytest.fixture
def persona():
    """A deep copy of a demo persona's export, safe to modify."""
    return lambda name="margaret-ellis": copy.deepcopy(load_persona(name))


@pytest.fixture
def cli_env(tmp_path, models_dir):
    """Runs `clone-pipeline ARGS` as a user would (a subprocess) on tmp_path/home (SQLite) and
    tmp_path/dagster."""
    env = {**os.environ, "CLONE_HOME": str(tmp_path / "home"),
           "CLONE_MODELS_DIR": str(models_dir), "DAGSTER_HOME": str(tmp_path / "dagster")}
    env.pop("CLONE_DATABASE_URL", None)
    env.pop("DAGSTER_POSTGRES_URL", None)

    def run(*args: str) -> subprocess.CompletedProcess:
        return subprocess.run([sys.executable, "-m", "clone_pipeline.cli", *args], env=env,
                              capture_output=True, text=True, timeout=300)

    return run


def _spawned(tmp_path_factory, name: str, base: Path, **spec):
    """A vLLM engine over *base*, spawned without waiting (the caller waits where it is
    used), stopped when the fixture ends."""
    from clone_pipeline.engine.process import EngineSpec, start_engine

    folder = tmp_path_factory.mktemp(name)
    process = start_engine(EngineSpec(str(base), lora_dir=str(folder / "loras"), **spec),
                           folder / "engine.log", wait=False)
    yield process
    process.stop()


@pytest.fixture(scope="session")
def engine_spawned(local_tiny, tmp_path_factory):
    """The serving tests' engine over local-tiny (test_serving/conftest.py's `engine`): it
    may start while the live block still runs."""
    yield from _spawned(tmp_path_factory, "engine", local_tiny[2], max_loras=16,
                        max_num_seqs=64)


@pytest.fixture(scope="session")
def smollm2_engine_spawned(smollm2, tmp_path_factory):
    """The engine serving SmolLM2 for the default base's end to end, as `engine_spawned`."""
    yield from _spawned(tmp_path_factory, "smollm2-engine", smollm2, max_loras=4,
                        max_num_seqs=16, max_model_len=2048)


# Which spawned engine a later test needs, by the fixtures that show it.
_ENGINES = {"engine_spawned": {"engine", "gateway_factory"},
            "smollm2_engine_spawned": {"smollm2_engine"}}


def _spawn_engines_ahead(request) -> None:
    """From the live block's last two tests on, spawn every engine a later test needs: an
    engine's start (about half a minute) overlaps the block's runs, which mostly wait."""
    items = request.session.items
    later = items[items.index(request.node) + 1:] if request.node in items else []
    if sum("live_dagster" in item.fixturenames for item in later) > 1:
        return
    for spawn, users in _ENGINES.items():
        if any(users & set(item.fixturenames) for item in later):
            request.getfixturevalue(spawn)


_LIVE: list = []  # the session's LiveDagster, once started


@pytest.fixture
def live_dagster(request, tmp_path_factory, models_dir, monkeypatch):
    """The session's one `dagster dev` (webserver + daemon; see test_defs/dagster_dev.py),
    started by the first test that asks and stopped after the last (they run in one block).
    Its instance keeps Dagster's storage in PostgreSQL when the server is reachable (always
    in CI), else SQLite; this test's process gets the variables to open it."""
    from clone_pipeline_tests.test_defs.dagster_dev import LiveDagster

    if not _LIVE:
        pg_url = _create_pg_database() if _postgres_reachable() else None
        live = LiveDagster(tmp_path_factory.mktemp("live-dagster"), models_dir, pg_url)
        try:
            live.start()
        except BaseException:
            if pg_url:
                _drop_pg_database(pg_url)
            raise
        _LIVE.append(live)
    live = _LIVE[0]
    _spawn_engines_ahead(request)
    if "DAGSTER_POSTGRES_URL" in live.env:
        monkeypatch.setenv("DAGSTER_POSTGRES_URL", live.env["DAGSTER_POSTGRES_URL"])
    yield live
    live.cancel_unfinished()


def _stop_live_dagster() -> None:
    if _LIVE:
        live = _LIVE.pop()
        live.stop()
        if "DAGSTER_POSTGRES_URL" in live.env:
            _drop_pg_database(live.env["DAGSTER_POSTGRES_URL"])


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_teardown(item, nextitem):
    """The shared `dagster dev` stops after the last test of its block, so its daemon and
    code server never compete with the tests after it."""
    yield
    if nextitem is None or "live_dagster" not in nextitem.fixturenames:
        _stop_live_dagster()


def pytest_sessionfinish(session):
    _stop_live_dagster()


def pytest_collection_modifyitems(items):
    """The tests of the shared `dagster dev` run in one block; the serving tests share one
    engine (started on first use, stopped at the end of the session) and run last, so its
    worker threads never compete with the other tests. The operating API's test, which
    needs both, runs between the two. A test that uses either is slow."""
    for item in items:  # `make test-fast` (-m "not slow") never starts either
        if {"live_dagster", "engine"} & set(item.fixturenames):
            item.add_marker(pytest.mark.slow)

    def block(item) -> int:
        serving = "/test_serving/" in f"/{item.nodeid}"
        live = "live_dagster" in item.fixturenames
        return 2 * serving + (live != serving)

    items.sort(key=block)
