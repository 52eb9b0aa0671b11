"""`clone-pipeline remove-user` leaves nothing the person wrote or said behind.

Unique canary sentences are planted in one demo persona's material: a response's question
and answer (a held-out one, so it reaches the evaluation's samples), a life story, and a
voice recording whose audio is re-rendered from its canary transcript so the recording stays
usable for alignment. The export is imported and every job runs through Dagster on a real
instance (its own storage in SQLite or, for the PostgreSQL variant, in PostgreSQL too):
data_only, voice_integration and complete_workflow (training with the voice examples, then
evaluation). Then the user is removed exactly as a person would do it (the CLI, in its own
process), and the canaries' distinctive words are searched for everywhere the project
writes:

- every file under CLONE_HOME (which holds DAGSTER_HOME, so Dagster's SQLite storage and
  compute logs), CLONE_MODELS_DIR and the temporary directory the runs used: raw bytes
  (case-insensitive), after JSON unescaping, and as bare words; zip and gzip members too;
- SQLite files both as bytes (deleted text left in free pages or WAL frames counts) and as
  live rows (table.column, the Dagster event type and the JSON path of the metadata key).
  Every SQLite connection starts with SQLite's own default, secure_delete off: Debian and
  Ubuntu build SQLite with it on, most other builds do not, and the result must not depend
  on the machine;
- both PostgreSQL databases (domain and Dagster): every text-like column of every row,
  `pg_dump --data-only`, and the raw bytes of every page (pageinspect): a deleted row stays
  in its page, even after a plain VACUUM, until the space is reused (VACUUM FULL rewrites).

A canary is matched by its phrase (as words, so markdown, escapes and prosody marks do not
hide it) and by each of its coined words alone (those survive PII redaction, truncation and
any tokenisation). Before removal the same search must find every canary (so the test cannot
pass by looking in the wrong place); after removal it must find none, and the failure lists
every hit with its place and a snippet.
"""

from __future__ import annotations

import contextlib
import gzip
import io
import json
import os
import re
import shutil
import sqlite3
import subprocess
import sys
import tempfile
import time
import zipfile
from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path
from types import SimpleNamespace

import dagster as dg
import pytest
from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url

from clone_pipeline.data.collect import _group_key
from clone_pipeline.data.split import split_by_question
from clone_pipeline.launch.instance import default_template, initialise
from clone_pipeline.launch.launch import run_job_for_user
from clone_pipeline.services.ingest import import_export
from clone_pipeline.services.memory import build_memory
from clone_pipeline.training.config import PRESETS

USER = "margaret-ellis"


@dataclass(frozen=True)
class Canary:
    planted: str  # the text put into the material
    phrase: str  # a part that survives PII redaction, matched as words
    words: tuple[str, ...]  # coined words: found alone whatever happens around them


CANARIES = {
    "question": Canary("And what about the Zindlemoor ferry?",
                       "what about the zindlemoor ferry", ("zindlemoor",)),
    "answer": Canary(
        "The canary kettle whistled over Quillfeather Lane at dawn while Ottoline Vexbury "
        "counted plums; ring her on 0113 496 0571 or write to ottoline@quillfeather.example.",
        "the canary kettle whistled over quillfeather lane at dawn while ottoline vexbury",
        ("quillfeather", "vexbury", "ottoline")),
    "story": Canary("Grandad Thistlewick hid the brass zephyrgram under the Marrowby oak.",
                    "grandad thistlewick hid the brass zephyrgram under the marrowby oak",
                    ("thistlewick", "zephyrgram", "marrowby")),
    "voice transcript": Canary(
        "The copper lanterns of Brindlecombe glowed beside the Wexmoor canal. "
        "We rowed home slowly, singing until the lamps went out.",
        "the copper lanterns of brindlecombe glowed beside the wexmoor canal",
        ("brindlecombe", "wexmoor")),
}
# The cpu_demo preset, cut to two optimizer steps, with the voice-conditioned examples.
TRAIN = {**PRESETS["cpu_demo"], "max_steps": 2, "eval_steps": 2, "min_free_disk_gb": 0.1,
         "include_voice_integration": True}
JOBS = [("data_only", {}), ("voice_integration", {}),
        ("complete_workflow", {"ops": {"trained_adapter": {"config": TRAIN}}})]
# Deleted rows still in PostgreSQL's pages count as surviving text.
POSTGRES_PAGE_BYTES = True
# SQLite's own default for every new connection, here and in the CLI's process (see above).
STOCK_SQLITE = """
import sqlite3, sqlite3.dbapi2
_connect = sqlite3.dbapi2.connect
def _stock_connect(*args, **kwargs):
    con = _connect(*args, **kwargs)
    con.execute("PRAGMA secure_delete=OFF")
    return con
"""


# ------------------------------------------------------------------ matching


@dataclass(frozen=True)
class Hit:
    place: str
    canary: str
    needles: tuple[str, ...]
    view: str  # raw, json-unescaped or words
    snippet: str

    def __str__(self) -> str:
        return (f"{self.place}\n      {self.canary}: {', '.join(self.needles)} "
                f"[{self.view}] ...{self.snippet}...")


_ESCAPES = [(re.compile(r"\\u([0-9a-f]{4})"), lambda m: chr(int(m.group(1), 16))),
            (re.compile(r"\\[nrt]"), lambda m: " "),
            (re.compile(r"\\(.)"), lambda m: m.group(1))]


def _words(s: str) -> str:
    return re.sub(r"[^a-z0-9]+", " ", s)


def _views(s: str) -> list[tuple[str, str]]:
    raw = s.lower()
    unescaped = raw
    for _ in range(4):  # JSON inside JSON inside a dump
        before = unescaped
        for pattern, repl in _ESCAPES:
            unescaped = pattern.sub(repl, unescaped)
        if unescaped == before:
            break
    views = [("raw", raw)]
    if unescaped != raw:
        views.append(("json-unescaped", unescaped))
    views.append(("words", _words(unescaped)))
    return views


def find_canaries(data: str | bytes) -> dict[str, tuple[tuple[str, ...], str, str]]:
    """canary -> (needles found, first view that has one, a snippet around it)."""
    if isinstance(data, bytes):
        data = data.decode("utf-8", "replace")
    if not data:
        return {}
    views = _views(data)
    found = {}
    for name, canary in CANARIES.items():
        needles, first = [], None
        for needle in (canary.phrase, *canary.words):
            for view, body in views:
                key = needle if view != "words" else _words(needle).strip()
                at = body.find(key)
                if at >= 0:
                    needles.append(needle if needle != canary.phrase else "<phrase>")
                    if first is None:
                        snippet = body[max(0, at - 60):at + len(key) + 60]
                        first = (view, re.sub(r"[^\x20-\x7e]+", " ", snippet))
                    break
        if needles:
            found[name] = (tuple(needles), *first)
    return found


def _hits(place: str, data: str | bytes) -> list[Hit]:
    return [Hit(place, name, needles, view, snippet)
            for name, (needles, view, snippet) in find_canaries(data).items()]


def _json_paths(value, path: str = "$") -> list[tuple[str, str]]:
    """(JSON path, string) for every string leaf, parsing JSON nested in strings."""
    if isinstance(value, str):
        stripped = value.strip()
        if stripped[:1] in ("{", "["):
            try:
                return _json_paths(json.loads(stripped), path)
            except ValueError:
                pass
        return [(path, value)]
    if isinstance(value, dict):
        return [p for k, v in value.items() for p in _json_paths(v, f"{path}.{k}")]
    if isinstance(value, list):  # Dagster's metadata entries are named by their label
        return [p for i, v in enumerate(value) for p in _json_paths(
            v, f"{path}[{v['label']!r}]" if isinstance(v, dict) and isinstance(
                v.get("label"), str) else f"{path}[{i}]")]
    return []


def _cell_hits(place: str, cell) -> list[Hit]:
    """Hits in one database cell, located down to the JSON path (and Dagster event type)."""
    if isinstance(cell, bytes | memoryview):
        cell = bytes(cell).decode("utf-8", "replace")
    if not isinstance(cell, str) or not find_canaries(cell):
        return []
    try:
        parsed = json.loads(cell)
    except ValueError:
        return _hits(place, cell)
    event = ""
    if isinstance(parsed, dict) and isinstance(parsed.get("dagster_event"), dict):
        event = f" [{parsed['dagster_event'].get('event_type_value')}]"
    out = []
    for path, leaf in _json_paths(parsed):
        out += _hits(f"{place}{event} {path}", leaf)
    return out or _hits(f"{place}{event}", cell)


# ------------------------------------------------------------------ files and SQLite


def _file_members(path: Path, data: bytes) -> list[tuple[str, bytes]]:
    """The file itself, plus the members of a zip (torch checkpoints) or a gzip stream."""
    out = [("", data)]
    if data[:4] == b"PK\x03\x04":
        try:
            with zipfile.ZipFile(io.BytesIO(data)) as z:
                out += [(f"!{n}", z.read(n)) for n in z.namelist()]
        except (zipfile.BadZipFile, OSError):
            pass
    elif data[:2] == b"\x1f\x8b":
        with contextlib.suppress(OSError):
            out.append(("!gunzip", gzip.decompress(data)))
    return out


def _sqlite_live(path: Path, label: str, scratch: Path) -> list[Hit]:
    """Hits in the live rows of a SQLite database (WAL frames merged), by table.column."""
    copy = scratch / f"{len(list(scratch.iterdir()))}.db"
    shutil.copyfile(path, copy)
    if Path(f"{path}-wal").exists():
        shutil.copyfile(f"{path}-wal", f"{copy}-wal")
    hits: list[Hit] = []
    con = sqlite3.connect(copy)
    try:
        tables = [r[0] for r in con.execute(
            "select name from sqlite_master where type = 'table'")]
        for table in tables:
            cur = con.execute(f'select * from "{table}"')
            columns = [d[0] for d in cur.description]
            for row in cur:
                for column, cell in zip(columns, row, strict=True):
                    hits += _cell_hits(f"sqlite {label}: {table}.{column}", cell)
    finally:
        con.close()
    return hits


def scan_files(roots: dict[str, Path], scratch: Path) -> list[Hit]:
    hits: list[Hit] = []
    scratch.mkdir(exist_ok=True)
    seen: set[Path] = set()
    for label, root in roots.items():
        for path in sorted(root.rglob("*")):
            if not path.is_file() or path.is_symlink() or path.resolve() in seen:
                continue
            seen.add(path.resolve())
            rel = f"{label}/{path.relative_to(root)}"
            data = path.read_bytes()
            if data[:16] == b"SQLite format 3\x00":
                live = _sqlite_live(path, rel, scratch)
                hits += live
                in_rows = {h.canary for h in live}
                hits += [Hit(f"sqlite {rel}: deleted text in free pages (no live row has it)",
                             h.canary, h.needles, h.view, h.snippet)
                         for h in _hits(rel, data) if h.canary not in in_rows]
                continue
            if path.name.endswith("-wal"):
                db = path.with_name(path.name[:-4])
                in_rows = ({h.canary for h in _sqlite_live(db, rel, scratch)}
                           if db.exists() else set())
                hits += [Hit(f"sqlite {rel}: deleted text in WAL frames (no live row has it)",
                             h.canary, h.needles, h.view, h.snippet)
                         for h in _hits(rel, data) if h.canary not in in_rows]
                continue
            for member, body in _file_members(path, data):
                hits += _hits(f"file {rel}{member}", body)
    return hits


# ------------------------------------------------------------------ PostgreSQL


def _libpq_url(url: str) -> str:
    return make_url(url).set(drivername="postgresql").render_as_string(hide_password=False)


def scan_postgres(label: str, url: str) -> list[Hit]:
    """Live rows (every text-like column), pg_dump, and every page's raw bytes."""
    hits: list[Hit] = []
    engine = create_engine(url, isolation_level="AUTOCOMMIT")
    live_tables: dict[str, set[str]] = defaultdict(set)  # table -> canaries in live rows
    try:
        with engine.connect() as conn:
            columns = defaultdict(list)
            for schema, table, column, dtype in conn.execute(text(
                    "select table_schema, table_name, column_name, data_type "
                    "from information_schema.columns c join information_schema.tables t "
                    "using (table_schema, table_name) where t.table_type = 'BASE TABLE' "
                    "and table_schema not in ('pg_catalog', 'information_schema') "
                    "and data_type in ('text', 'character varying', 'character', 'json', "
                    "'jsonb', 'bytea', 'ARRAY', 'USER-DEFINED')")):
                expr = (f'encode("{column}", \'escape\')' if dtype == "bytea"
                        else f'"{column}"::text')
                columns[(schema, table)].append((column, expr))
            for (schema, table), cols in columns.items():
                names = [c for c, _ in cols]
                query = f'select {", ".join(e for _, e in cols)} from "{schema}"."{table}"'
                for row in conn.execute(text(query)):
                    for column, cell in zip(names, row, strict=True):
                        found = _cell_hits(f"postgres {label}: {table}.{column}", cell)
                        live_tables[table] |= {h.canary for h in found}
                        hits += found

            if POSTGRES_PAGE_BYTES:
                hits += _postgres_pages(conn, label, live_tables)
    finally:
        engine.dispose()

    if shutil.which("pg_dump"):
        dump = subprocess.run(["pg_dump", "--data-only", "--no-owner",
                               f"--dbname={_libpq_url(url)}"],
                              capture_output=True, text=True, timeout=300, check=True).stdout
        table, seen = None, set()
        for line in dump.splitlines():
            if line.startswith("COPY "):
                table = line.split()[1]
                continue
            for h in _hits(f"pg_dump {label}: COPY {table}", line):
                if (h.place, h.canary) not in seen:
                    seen.add((h.place, h.canary))
                    hits.append(h)
    return hits


def _postgres_pages(conn, label: str, live_tables: dict[str, set[str]]) -> list[Hit]:
    """Canaries in the raw bytes of any page (heap, TOAST, index) of a relation whose
    table has no live row holding them: deleted or superseded row versions."""
    try:
        conn.execute(text("create extension if not exists pageinspect"))
    except Exception as exc:  # noqa: BLE001 - report, do not hide, a check not made
        return [Hit(f"postgres {label}: pageinspect unavailable ({exc})", "-", (), "-",
                    "page bytes were not checked")]
    rels = conn.execute(text(
        "select c.oid::regclass::text, "
        "coalesce(owner.oid, ix.indrelid, c.oid)::regclass::text, "
        "pg_relation_size(c.oid) / current_setting('block_size')::int "
        "from pg_class c join pg_namespace n on n.oid = c.relnamespace "
        "left join pg_class owner on owner.reltoastrelid = c.oid "
        "left join pg_index ix on ix.indexrelid = c.oid "
        "where c.relkind in ('r', 't', 'i', 'm') and c.relpersistence = 'p' "
        "and n.nspname not in ('pg_catalog', 'information_schema')")).all()
    hits = []
    for rel, owner, n_pages in rels:
        if not n_pages:
            continue
        raw = b"".join(bytes(p) for (p,) in conn.execute(
            text("select get_raw_page(:rel, g::int) from generate_series(0, :n - 1) g"),
            {"rel": rel, "n": n_pages}))
        table = owner.split(".")[-1].strip('"')
        hits += [Hit(f"postgres {label}: page bytes of {rel} (deleted or old row versions: "
                     f"no live row of {table} has it)", h.canary, h.needles, h.view,
                     h.snippet)
                 for h in _hits(rel, raw) if h.canary not in live_tables.get(table, set())]
    return hits


# ------------------------------------------------------------------ planting


def _render_canary_recording(target: Path, transcript: str) -> None:
    """The canary transcript spoken by eSpeak NG (as the demo audio was made), so the
    recording matches its transcript and stays usable for alignment."""
    import soundfile as sf

    from clone_pipeline.voice import espeak
    from clone_pipeline.voice.audio_io import resample

    speech = espeak.render(transcript, voice="en-us", pitch=55, rate=135)
    sf.write(str(target), resample(speech.audio, speech.sample_rate, 16_000), 16_000)


def plant(doc: dict) -> dict:
    """Put the canaries into the export. The question canary goes on a response that the
    split holds out and that comes among the first three held-out ones, so it reaches the
    evaluation's samples; its answer gets the answer canary."""
    responses = sorted(doc["responses"], key=lambda r: (r["created_at"], r["id"]))
    for candidate in responses:
        question = f"{candidate['question']} {CANARIES['question'].planted}"
        items = [SimpleNamespace(id=r["id"], source="responses", group=_group_key(
            question if r is candidate else r["question"])) for r in responses]
        _, held_out = split_by_question(items, eval_fraction=0.1, seed=0)
        if candidate["id"] in [e.id for e in held_out[:3]]:
            candidate["question"] = question
            candidate["answer"] = f"{CANARIES['answer'].planted} {candidate['answer']}"
            break
    else:
        raise AssertionError("no response can carry the question canary into evaluation")
    story = doc["life_stories"][0]
    story["content"] = f"{CANARIES['story'].planted} {story['content']}"
    recording = doc["voice_recordings"][0]
    recording["text"] = CANARIES["voice transcript"].planted
    recording["passage_id"] = "canary"
    return doc


def _report(hits: list[Hit]) -> str:
    return "\n".join(f"  - {h}" for h in sorted(hits, key=lambda h: (h.place, h.canary)))


# ------------------------------------------------------------------ the test


@pytest.mark.slow
def test_remove_user_leaves_nothing(settings, persona, write_export, local_tiny,
                                    tmp_path, monkeypatch, request):
    started = time.perf_counter()
    postgres = settings.database_url.startswith("postgresql")
    run_tmp = tmp_path / "run-tmp"  # the runs' temporary files (Pipes) land here, scanned
    run_tmp.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(run_tmp))
    # A models folder of its own, scanned like the rest, holding only the base these runs
    # use: the session's also holds SmolLM2's 540 MB conversion, which no run here touches.
    models_dir = tmp_path / "models"
    shutil.copytree(local_tiny[2].parent, models_dir / local_tiny[2].parent.name)
    env = {"CLONE_HOME": str(settings.home), "CLONE_DATABASE_URL": settings.database_url,
           "CLONE_MODELS_DIR": str(models_dir), "DAGSTER_HOME": str(settings.dagster_home),
           "TMPDIR": str(run_tmp)}
    dagster_url = None
    if postgres:
        dagster_url = request.getfixturevalue("new_pg_database")()
        env["DAGSTER_POSTGRES_URL"] = dagster_url
    else:
        monkeypatch.delenv("DAGSTER_POSTGRES_URL", raising=False)
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    exec(STOCK_SQLITE, stock := {})  # the same prelude the CLI's process runs
    monkeypatch.setattr(sqlite3, "connect", stock["_stock_connect"])
    monkeypatch.setattr(sqlite3.dbapi2, "connect", stock["_stock_connect"])
    initialise(settings, default_template())  # what `clone-pipeline init` does

    doc = plant(persona(USER))
    export = write_export(doc, audio_from=USER)
    _render_canary_recording(export.parent / doc["voice_recordings"][0]["file"],
                             CANARIES["voice transcript"].planted)
    import_export(export.parent, settings)

    with dg.DagsterInstance.from_config(str(settings.dagster_home)) as instance:
        assert (type(instance.run_storage).__name__ == "PostgresRunStorage") == postgres
        outcomes = {job: run_job_for_user(instance, job, USER, config)
                    for job, config in JOBS}
    assert outcomes["data_only"].success, outcomes["data_only"].error
    assert outcomes["voice_integration"].success, outcomes["voice_integration"]
    assert "model_evaluation" in outcomes["complete_workflow"].materialized, \
        outcomes["complete_workflow"]
    memory = build_memory(settings, USER)  # the memory index holds her words too
    assert find_canaries((memory.folder / "passages.jsonl").read_text(encoding="utf-8"))
    pipeline_s = time.perf_counter() - started

    roots = {"CLONE_HOME": settings.home, "CLONE_MODELS_DIR": models_dir, "TMPDIR": run_tmp}
    if not settings.dagster_home.is_relative_to(settings.home):
        roots["DAGSTER_HOME"] = settings.dagster_home

    def scan(tag: str) -> list[Hit]:
        hits = scan_files(roots, tmp_path / f"scratch-{tag}")
        if postgres:
            hits += scan_postgres("domain", settings.database_url)
            hits += scan_postgres("dagster", dagster_url)
        return hits

    # Positive control: before removal the search finds every canary.
    compute_logs = list(settings.dagster_home.glob("storage/*/compute_logs/*.err"))
    assert len(compute_logs) == len(JOBS)  # captured stdout/stderr of every run is searched
    before = scan("before")
    assert {h.canary for h in before} >= set(CANARIES), \
        f"the search misses planted canaries; it found:\n{_report(before)}"

    # The CLI removes in its own process while this one keeps its pooled connections to the
    # domain database open, as a running `dagster dev` (sensors, code server) would.
    cli = (f"{STOCK_SQLITE}\nsqlite3.connect = sqlite3.dbapi2.connect = _stock_connect\n"
           f"from clone_pipeline.cli import main\nmain(prog_name='clone-pipeline')")
    removed = subprocess.run([sys.executable, "-c", cli, "remove-user", USER, "--yes"],
                             env={**os.environ, **env}, capture_output=True, text=True,
                             timeout=300)
    assert removed.returncode == 0, removed.stdout + removed.stderr
    assert not find_canaries(removed.stdout + removed.stderr)

    after = scan("after")
    summary = (f"{len(after)} place(s) still hold {USER}'s text after remove-user "
               f"({'PostgreSQL' if postgres else 'SQLite'}; pipeline {pipeline_s:.0f} s, "
               f"total {time.perf_counter() - started:.0f} s):\n{_report(after)}")
    (tmp_path / "canary-report.txt").write_text(
        f"{summary}\n\nbefore removal:\n{_report(before)}\n", encoding="utf-8")
    print(summary)
    assert not after, summary
    assert not memory.folder.exists()
