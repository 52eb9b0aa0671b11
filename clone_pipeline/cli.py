"""The clone-pipeline command: set up, import material, run the pipeline, inspect users."""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

import click
from rich import box
from rich.console import Console
from rich.markup import escape
from rich.progress import BarColumn, Progress, SpinnerColumn, TextColumn, TimeElapsedColumn
from rich.table import Table

from clone_pipeline.settings import Settings, load_settings
from clone_pipeline.training.base_models import DEFAULT_BASE_MODEL

# Piped output (make demo, CI logs) gets a readable width instead of rich's 80 columns.
console = Console(width=None if sys.stdout.isatty() else 120)
err_console = Console(stderr=True)
# In-process runs log every Dagster event to the console; the UI keeps the full log, so the
# CLI shows none of it unless --verbose (see _quiet_libraries).
QUIET_RUN = {"loggers": {"console": {"config": {"log_level": "CRITICAL"}}}}
# Library chatter that interleaves the tables: deprecation notices, weight-loading bars,
# advisory logs. Environment variables, so the training child process inherits them too;
# set only where the user has not set them.
QUIET_ENV = {
    "PYTHONWARNINGS": "ignore::FutureWarning,ignore::DeprecationWarning",
    "TRANSFORMERS_VERBOSITY": "error",
    "HF_HUB_DISABLE_PROGRESS_BARS": "1",  # transformers' own bars follow this too
    "TQDM_DISABLE": "1",
    "TOKENIZERS_PARALLELISM": "false",  # its fork warning
}


def _quiet_libraries(verbose: bool) -> None:
    """The one place that decides what besides our own tables reaches the terminal."""
    if verbose:
        QUIET_RUN["loggers"]["console"]["config"]["log_level"] = "DEBUG"
        return
    import warnings

    for name, value in QUIET_ENV.items():
        os.environ.setdefault(name, value)
    for category in (FutureWarning, DeprecationWarning):
        warnings.filterwarnings("ignore", category=category)


def _settings() -> Settings:
    settings = load_settings()
    # Dagster reads DAGSTER_HOME itself: point it at our instance folder unless the user did.
    os.environ.setdefault("DAGSTER_HOME", str(settings.dagster_home))
    return settings


def _ensure_ready(settings: Settings, create: bool = False) -> None:
    """Commands that add material (*create*) initialise a fresh data root; the others refuse
    a missing one instead of showing an empty one. The data root and the Dagster instance
    must belong together, and an existing root must be at the current schema (only `init`
    migrates)."""
    from clone_pipeline.db.session import require_current_schema
    from clone_pipeline.orchestration.instance import default_template, initialise
    from clone_pipeline.services.pairing import check_pairing, require_data_root

    check_pairing(settings)
    if not create:
        require_data_root(settings)
    if not (settings.dagster_home / "dagster.yaml").exists():
        initialise(settings, default_template())
    else:
        settings.ensure_dirs()
        require_current_schema(settings.database_url)


def _instance():
    import dagster as dg

    return dg.DagsterInstance.get()


class _Group(click.Group):
    """Turns the errors that say what to do (an unknown user, a schema behind, an id that
    would leave the data root) into one line instead of a traceback, for every command."""

    def invoke(self, ctx: click.Context):
        from clone_pipeline.db.session import SchemaBehindError
        from clone_pipeline.db.users import UnknownUserError
        from clone_pipeline.files import UnsafePathError
        from clone_pipeline.services.pairing import NoDataRootError, PairingError

        try:
            return super().invoke(ctx)
        except (UnknownUserError, SchemaBehindError, UnsafePathError, NoDataRootError,
                PairingError) as exc:
            raise click.ClickException(str(exc)) from exc


@click.group(cls=_Group, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="clone_pipeline")
@click.option("-v", "--verbose", is_flag=True,
              help="Also show Dagster's run log and the libraries' warnings and progress bars.")
def main(verbose: bool) -> None:
    """Turn a person's written answers, stories, messages and recordings into a personal
    language model, orchestrated by Dagster.

    Settings come from the environment: CLONE_HOME (data root), CLONE_DATABASE_URL (domain
    database, default SQLite under the data root), DAGSTER_HOME (Dagster instance, default
    CLONE_HOME/dagster) and DAGSTER_POSTGRES_URL (Dagster storage in PostgreSQL).
    """
    _quiet_libraries(verbose)


@main.command()
@click.option("--instance-config", type=click.Path(dir_okay=False, path_type=Path),
              help="Dagster instance settings to install (default: the project's "
                   "dagster.yaml).")
def init(instance_config: Path | None) -> None:
    """Create the data root, migrate the domain database, write $DAGSTER_HOME/dagster.yaml."""
    from clone_pipeline.db.session import safe_url
    from clone_pipeline.orchestration.instance import default_template, initialise

    settings = _settings()
    written = initialise(settings, instance_config or default_template())
    console.print(f"data root      {settings.home}")
    console.print(f"domain db      {safe_url(settings.database_url)}")
    console.print(f"dagster home   {settings.dagster_home} ({written.name} written)")
    storage = "postgres" if os.environ.get("DAGSTER_POSTGRES_URL") else "sqlite"
    console.print(f"dagster store  {storage}")


@main.command()
@click.option("--host", default="127.0.0.1", show_default=True, help="Address to serve on.")
@click.option("--port", default=3000, show_default=True, type=int, help="Port to serve on.")
def ui(host: str, port: int) -> None:
    """Open the Dagster UI (webserver and daemon) on this data root's instance.

    Runs `init` first (it refuses an instance that belongs to another data root). Ctrl-C or
    SIGTERM stops the UI, the daemon and any runs in progress within seconds (a training run
    checkpoints and resumes next time); `dagster dev` alone leaves runs going.
    """
    from clone_pipeline.orchestration.instance import default_template, initialise
    from clone_pipeline.orchestration.serve import serve

    initialise(_settings(), default_template())
    sys.exit(serve(["-m", "clone_pipeline.definitions", "-h", host, "-p", str(port)]))


@main.command(name="import")
@click.argument("paths", nargs=-1, required=True,
                type=click.Path(exists=False, path_type=Path))
@click.option("--prune", is_flag=True,
              help="Delete stored items that are no longer in the export.")
def import_cmd(paths: tuple[Path, ...], prune: bool) -> None:
    """Import user exports (export.json, a folder holding one, or a .zip).

    Each export is one transaction: if anything is wrong, every problem is listed and nothing
    is written. Re-importing the same export changes nothing.
    """
    from clone_pipeline.ingest import ExportError
    from clone_pipeline.services.ingest import import_export

    settings = _settings()
    _ensure_ready(settings, create=True)
    failed = False
    for path in paths:
        try:
            summary = import_export(path, settings, prune=prune)
        except ExportError as exc:
            err_console.print(str(exc), style="red", markup=False, highlight=False,
                              soft_wrap=True)  # one line per problem, however long
            failed = True
            continue
        _print_import(path, summary)
    if failed:
        sys.exit(2)


@main.command(name="schema")
def schema_cmd() -> None:
    """Print the JSON Schema of the user export the importer validates with (the contract
    itself, with its semantics, is docs/user-export.md; the same schema is
    docs/user-export.schema.json)."""
    from clone_pipeline.ingest.schema import schema_json

    click.echo(schema_json(), nl=False)


def _print_import(path: Path, summary) -> None:
    state = ("new user" if summary.user_created
             else "updated" if summary.changed else "unchanged")
    table = Table(title=f"{summary.external_id} ({state}) from {path}")
    for col in ("list", "inserted", "updated", "unchanged", "pruned"):
        table.add_column(col, justify="right" if col != "list" else "left")
    for name, c in summary.lists.items():
        table.add_row(name, str(c.inserted), str(c.updated), str(c.unchanged), str(c.pruned))
    console.print(table)
    if summary.audio_files_copied:
        console.print(f"{summary.audio_files_copied} audio file(s) copied into the data root")


@main.command()
@click.option("--json", "as_json", is_flag=True, help="Print JSON instead of a table.")
def users(as_json: bool) -> None:
    """Where each user stands: material, data readiness, formatted dataset, adapter (version
    and held-out perplexity), voice profile and deployment."""
    from clone_pipeline.services.users import overview

    settings = _settings()
    _ensure_ready(settings)
    rows = overview(settings)
    if as_json:
        click.echo(json.dumps(rows, indent=2, default=str))
        return
    console.print(_status_table(rows))


def _status_table(rows: list[dict]) -> Table:
    table = Table(title="Users (items: responses/stories/messages/recordings)",
                  caption="formatted: dataset version, train/eval examples, formats; adapter: "
                          "version, held-out perplexity of the adapter / its base (lower is "
                          "better); deployment: name, served version, status")
    for col in ("user", "items r/s/m/v"):
        table.add_column(col, no_wrap=True)
    table.add_column("data")
    for col in ("formatted", "adapter", "voice profile", "deployment"):
        table.add_column(col, no_wrap=True)
    for r in rows:
        items = "/".join(str(r[k]) for k in ("responses", "life_stories", "milestone_messages",
                                             "voice_recordings"))
        if r["ready"] is None:
            data = "not collected"
        elif r["ready"]:
            data = f"[green]ready[/green] (v{r['dataset_version']})"
        else:
            why = "; ".join((r["readiness"] or {}).get("reasons", []))
            data = f"[yellow]not ready yet[/yellow]: {escape(why)} (v{r['dataset_version']})"
        f = r["formatted"]
        formatted = f"v{f['dataset_version']}: {f['train']}/{f['eval']}, {f['formats']}" \
            if f else "-"
        m = r["model"]
        if m is None:
            adapter = "-"
        elif m["adapter_perplexity"] is None:
            adapter = f"v{m['version']}: not evaluated"
        else:
            adapter = f"v{m['version']}: {m['adapter_perplexity']:.1f} / {m['base_perplexity']:.1f}"
        if m is not None and m["latest_version"] != m["version"]:
            adapter += f"\n(v{m['latest_version']} not current)"
        voice, dep = r["voice_profile"], r["deployment"]
        table.add_row(r["external_id"], items, data, formatted, adapter,
                      f"yes, {voice['created_at']:%Y-%m-%d}" if voice else "no",
                      f"{escape(dep['name'])} (v{dep['version']}, {dep['status']})" if dep
                      else "none")
    return table


def _readiness_table(rows: list[dict], with_sizes: bool = False) -> Table:
    table = Table(title="Users (items: responses/stories/messages/recordings)")
    columns = ["user", "items r/s/m/v", "dataset", "quality", "ready", "why not"]
    if with_sizes:
        columns += ["train/eval", "formats"]
    for col in columns:
        table.add_column(col)
    for r in rows:
        readiness = r["readiness"] or {}
        ready = {None: "not collected", True: "[green]ready[/green]",
                 False: "[red]not ready[/red]"}[r["ready"]]
        items = "/".join(str(r[k]) for k in ("responses", "life_stories", "milestone_messages",
                                             "voice_recordings"))
        quality = r["quality"] or {}
        cells = [r["external_id"], items,
                 f"v{r['dataset_version']}" if r["dataset_version"] else "-",
                 str(quality.get("overall_score", "-")), ready,
                 "; ".join(readiness.get("reasons", []))]
        if with_sizes:
            size = r["formatted"]
            cells += [f"{size['train']}/{size['eval']}", str(size["formats"])] if size \
                else ["-", "-"]
        table.add_row(*cells)
    return table


@main.command()
@click.argument("external_id")
@click.argument("path", type=click.Path(exists=True, dir_okay=False, path_type=Path))
def facts(external_id: str, path: Path) -> None:
    """Keep PATH as the person's fact sheet: held-out questions about her life (with the
    words a right answer contains) and about things she never told, which model_evaluation
    asks every version (README, 'Fidelity'). Never trained on."""
    from clone_pipeline.memory.fidelity import FactSheetError
    from clone_pipeline.services.fidelity import store_fact_sheet
    from clone_pipeline.services.users import require_user

    settings = _settings()
    _ensure_ready(settings)
    require_user(settings, external_id)
    try:
        sheet = store_fact_sheet(settings, external_id, path)
    except FactSheetError as exc:
        raise click.ClickException(str(exc)) from None
    console.print(f"{external_id}: {len(sheet.told)} told and {len(sheet.never_told)} "
                  f"never-told questions kept; the next model_evaluation measures them")


@main.command(name="remove-user")
@click.argument("external_id")
@click.option("--yes", is_flag=True, help="Do it without asking.")
def remove_user(external_id: str, yes: bool) -> None:
    """Delete a user: their rows in every domain table, their files and their partition."""
    from clone_pipeline.files import check_id
    from clone_pipeline.orchestration.users import remove_user as remove
    from clone_pipeline.services.users import require_user

    settings = _settings()
    _ensure_ready(settings)
    check_id(external_id)
    require_user(settings, external_id)
    if not yes:
        click.confirm(f"Delete everything stored for {external_id}?", abort=True)
    remove(_instance(), settings, external_id)
    console.print(f"removed {external_id}")


@main.command()
@click.argument("external_ids", nargs=-1, required=True)
@click.option("--job", default="data_only", show_default=True,
              help="Dagster job to run: data_only, complete_workflow, voice_integration, "
                   "train_cpu_demo, train_rtx5090 or train_h100.")
@click.option("--config", "config_file", type=click.Path(exists=True, path_type=Path),
              help="Run config (YAML or JSON) for the job, as in the Launchpad; examples for "
                   "each training preset are in examples/run_config/.")
def run(external_ids: tuple[str, ...], job: str, config_file: Path | None) -> None:
    """Materialise users' assets through Dagster (recorded in the instance, shown in the UI).

    Prints each run's id as it starts (follow it with `clone-pipeline progress ID`), and the
    evaluation figures and promotion verdict of any model it trained.
    """
    import yaml

    from clone_pipeline.definitions import JOB_NAMES
    from clone_pipeline.orchestration.launch import run_job_for_user

    if job not in JOB_NAMES:
        raise click.ClickException(f"no job {job!r}; choose one of: {', '.join(JOB_NAMES)}")
    settings = _settings()
    _ensure_ready(settings)
    run_config = yaml.safe_load(config_file.read_text()) if config_file else {}
    instance = _instance()
    ok = True
    for external_id in external_ids:
        def started(run_id: str, user: str = external_id) -> None:
            console.print(f"{user}: run {run_id} started ({job}); follow it with "
                          f"clone-pipeline progress {run_id}", soft_wrap=True)

        with console.status(f"running {job} for {external_id}"):
            outcome = run_job_for_user(instance, job, external_id,
                                       {**QUIET_RUN, **run_config}, settings=settings,
                                       on_start=started)
        _print_outcome(external_id, outcome)
        _print_trained(settings, outcome.run_id)
        ok &= outcome.success
    sys.exit(0 if ok else 1)


def _print_trained(settings: Settings, run_id: str) -> None:
    """The figures and verdict of each model version the run trained."""
    from clone_pipeline.services.model_versions import trained_in_run

    for v in trained_in_run(settings, run_id):
        if v.adapter_perplexity is None:
            console.print(f"  trained v{v.version}; not evaluated, so not promoted: "
                          f"materialise model_evaluation for it (complete_workflow does both)")
            continue
        console.print(f"  trained v{v.version}: held-out perplexity {v.adapter_perplexity} "
                      f"(base {v.base_perplexity}; lower is better), persona similarity "
                      f"{v.persona_similarity} (control {v.control_similarity}; higher is "
                      f"better)", soft_wrap=True)
        console.print(f"  {'current' if v.current else 'not current'}: {v.note}",
                      soft_wrap=True, markup=False)


def _print_outcome(external_id: str, outcome) -> None:
    if outcome.success:
        status = "[green]succeeded[/green]"
    elif outcome.failed_checks:
        status = "[yellow]stopped by a check[/yellow]"
    else:
        status = "[red]failed[/red]"
    console.print(f"{external_id}: run {outcome.run_id} {status}; materialised "
                  f"{', '.join(outcome.materialized) or 'nothing'}")
    for check, why in outcome.failed_checks.items():
        console.print(f"  {check}: {why}", markup=False, highlight=False)
    if outcome.error and not outcome.failed_checks:
        console.print(f"  error: {outcome.error}")


@main.command()
@click.option("--skip-import", is_flag=True, help="Use the personas already imported.")
@click.option("--voice/--no-voice", default=True, show_default=True,
              help="Build voice profiles and voice-text alignments for every persona.")
@click.option("--train/--no-train", default=True, show_default=True,
              help="Also train and evaluate an adapter for each ready persona (CPU preset).")
def demo(skip_import: bool, voice: bool, train: bool) -> None:
    """Import the bundled demo personas and run the pipeline for each through Dagster: the
    data stages, then training and evaluation for the ready ones, with a summary."""
    from clone_pipeline.demo import persona_dirs
    from clone_pipeline.orchestration.launch import run_job_for_user
    from clone_pipeline.services.evaluation import cross_perplexity, latest_evaluation
    from clone_pipeline.services.fidelity import store_fact_sheet
    from clone_pipeline.services.ingest import import_export
    from clone_pipeline.services.users import overview
    from clone_pipeline.services.voice import latest_voice
    from clone_pipeline.training.config import PRESETS

    settings = _settings()
    _ensure_ready(settings, create=True)
    personas = persona_dirs()
    instance = _instance()
    outcomes = {}
    with Progress(SpinnerColumn(), TextColumn("{task.description}"), BarColumn(),
                  TextColumn("{task.completed}/{task.total}"), TimeElapsedColumn(),
                  console=console) as progress:
        task = progress.add_task("demo", total=len(personas) * (1 if skip_import else 2))
        for folder in personas:
            if not skip_import:
                progress.update(task, description=f"importing {folder.name}")
                import_export(folder, settings)
                if (folder / "facts.json").is_file():
                    store_fact_sheet(settings, folder.name, folder / "facts.json")
                progress.advance(task)
            progress.update(task, description=f"data_only for {folder.name}")
            outcomes[folder.name] = run_job_for_user(instance, "data_only", folder.name,
                                                     QUIET_RUN)
            progress.advance(task)
    table = _readiness_table(overview(settings, only=set(outcomes)), with_sizes=True)
    console.print(table)
    for name, outcome in outcomes.items():
        _print_outcome(name, outcome)
    ready = [name for name, outcome in outcomes.items() if outcome.success]
    if train and ready:
        config = {**QUIET_RUN, "ops": {"trained_adapter": {"config": PRESETS["cpu_demo"]}}}
        with console.status(f"training and evaluating on {DEFAULT_BASE_MODEL} (the first run "
                            f"prepares the base model once)") as status:
            for name in ready:
                status.update(f"complete_workflow for {name}")
                outcome = run_job_for_user(instance, "complete_workflow", name, config)
                _print_outcome(name, outcome)
        evaluations = {name: latest_evaluation(settings, name) for name in ready}
        console.print(_evaluation_table(evaluations))
        console.print(_fidelity_table(evaluations))
        if len(ready) > 1:
            with console.status("each adapter on every person's held-out answers"):
                cross = cross_perplexity(settings, ready)
            console.print(_cross_table(ready, cross))
        _serve_and_ask(instance, settings, ready)
    if voice:
        with console.status("voice profiles and alignment") as status:
            for name in outcomes:
                status.update(f"voice_integration for {name}")
                _print_outcome(name, run_job_for_user(instance, "voice_integration", name,
                                                      QUIET_RUN))
        voices = {name: latest_voice(settings, name) for name in outcomes}
        console.print(_voice_table(voices))
        console.print("Hear a reply in a profile-matched voice (prosody matching, not "
                      "cloning):\n  clone-pipeline speak margaret-ellis \"Hello, love.\" "
                      "--out reply.wav")
    # Every variable the UI needs: without CLONE_HOME it would read another data root.
    # Database URLs may hold passwords, so they are named, not printed.
    from clone_pipeline.services.pairing import ui_command

    console.print("\nOpen the Dagster UI to see the runs and the per-user partitions (make ui "
                  "does the same):\n  "
                  + ui_command(settings.home, settings.dagster_home, settings.models_dir),
                  soft_wrap=True)
    kept = [v for v in ("CLONE_DATABASE_URL", "DAGSTER_POSTGRES_URL") if os.environ.get(v)]
    if kept:
        console.print(f"  with {' and '.join(kept)} exported as they are now")


def _serve_and_ask(instance, settings: Settings, names: list[str]) -> None:
    """Deploy the evaluated personas and print one answer from each, through the HTTP API."""
    from clone_pipeline.engine.client import EngineError
    from clone_pipeline.engine.process import EngineNotInstalledError
    from clone_pipeline.orchestration.serving_demo import deploy_and_ask

    try:
        with console.status("serving") as status:
            served = deploy_and_ask(instance, settings, names, QUIET_RUN,
                                    say=lambda text: status.update(text))
    except (EngineError, EngineNotInstalledError) as exc:
        console.print(f"[red]serving failed:[/red] {escape(str(exc))}")
        return
    table = Table(title="Served through the gateway (POST /v1/chat/completions)",
                  caption=f"greedy with repetition penalty 1.1, 200 tokens at most; base model "
                          f"{DEFAULT_BASE_MODEL}")
    table.add_column("user", no_wrap=True, min_width=14)
    table.add_column("question")
    table.add_column("the clone (base + their adapter + their memories)")
    table.add_column("the base alone, same system prompt")
    for s in served:
        answer = (escape(s.answer) if s.answer is not None else f"[red]{escape(s.problem)}")
        if s.sources:
            answer += "\n[dim]sources: " + escape("; ".join(
                f"{src['kind']} '{src['title']}' ({src['score']:.2f})" for src in s.sources))
        table.add_row(f"{s.user}\n{s.deployment or '-'}", escape(s.question), answer,
                      escape(s.base_answer or "-"))
    console.print(table)
    console.print("Keep them running with the chat page at http://127.0.0.1:8000/ (make serve), "
                  "then make a token: clone-pipeline token create margaret-ellis")


def _voice_table(voices: dict[str, dict | None]) -> Table:
    table = Table(title="Voice profiles (measured from the recordings) and alignment",
                  caption="rate in syllables/s; alignment: share of words where both "
                  "aligners agree within 150 ms; emotion: text/voice consistency")
    table.add_column("user", no_wrap=True, min_width=14)
    for col in ("usable", "pitch", "range", "rate", "pauses/min", "jitter/shimmer", "HNR",
                "alignment", "emotion", "check"):
        table.add_column(col)
    for name, v in voices.items():
        if not v or v["status"] != "ready":
            why = "; ".join(r for q in (v or {}).get("quality", {}).values()
                            for r in q["reasons"]) or "no recordings"
            table.add_row(name, "0", *["-"] * 8, f"failed: {why}")
            continue
        p, i = v["profile"], v["integration"] or {}
        vq = p.voice_quality
        usable = sum(q["usable"] for q in v["quality"].values())
        table.add_row(
            name, f"{usable}/{len(v['quality'])}", f"{p.pitch.median_hz:.0f} Hz",
            f"{p.pitch.range_st:.1f} st", f"{p.timing.speaking_rate_syll_s:.2f}",
            f"{p.timing.pauses_per_minute:.1f}",
            f"{vq.jitter_local:.3f}/{vq.shimmer_local:.3f}", f"{vq.hnr_db:.1f} dB",
            f"{i.get('alignment_accuracy') or 0:.3f}",
            f"{i.get('emotional_consistency') or 0:.3f}", i.get("status", "not aligned"))
    return table


@main.command()
@click.argument("external_id")
@click.argument("text")
@click.option("--emotion", default="neutral", show_default=True,
              help="Emotional tone: neutral, warm, cheerful, calm, serious, sad, excited.")
@click.option("--out", "out", type=click.Path(dir_okay=False, path_type=Path),
              default=Path("reply.wav"), show_default=True, help="WAV file to write.")
@click.option("--backend", default="espeak-ng", show_default=True,
              help="Speech backend (espeak-ng ships with the project).")
def speak(external_id: str, text: str, emotion: str, out: Path, backend: str) -> None:
    """Say TEXT in a voice matched to EXTERNAL_ID's profile (pitch and speaking rate; this
    is prosody matching, not voice cloning) and report how close it came."""
    import numpy as np
    import soundfile as sf

    from clone_pipeline.services.voice import latest_profile
    from clone_pipeline.voice.analysis import speaker_embedding
    from clone_pipeline.voice.audio_io import ANALYSIS_RATE, resample
    from clone_pipeline.voice.synthesis import ProsodyTarget, synthesizer

    settings = _settings()
    _ensure_ready(settings)
    found = latest_profile(settings, external_id)
    if found is None:
        raise click.ClickException(f"{external_id}: no usable voice profile; run the "
                                   f"voice_integration job first")
    profile = found.figures
    try:
        target = ProsodyTarget.from_profile(profile, emotion)
        engine = synthesizer(backend)
        with console.status("synthesising and matching the profile"):
            speech = engine.synthesize(text, target)
    except ValueError as exc:
        raise click.ClickException(str(exc)) from exc
    out.parent.mkdir(parents=True, exist_ok=True)
    sf.write(str(out), speech.audio, speech.sample_rate, subtype="PCM_16")
    report = speech.report()
    if profile.speaker_embedding:
        reply = speaker_embedding([resample(speech.audio, speech.sample_rate, ANALYSIS_RATE)])
        report["speaker_similarity"] = round(float(np.dot(reply, profile.speaker_embedding)), 3)
    console.print(f"wrote {out} ({report['duration_s']} s)")
    # The emotion moves the target away from the profile: label each figure for what it is.
    console.print(f"pitch {report['f0_hz']} Hz (target for {emotion} {report['target_f0_hz']} "
                  f"Hz, profile median {target.f0_median_hz:.1f} Hz; error "
                  f"{report['pitch_error_pct']}%)")
    console.print(f"rate {report['rate_syll_s']} syll/s (target for {emotion} "
                  f"{report['target_rate_syll_s']}, profile "
                  f"{target.speaking_rate_syll_s:.2f}; error {report['rate_error_pct']}%)")
    console.print(f"within tolerance of the target: {'yes' if speech.within_tolerance else 'no'}")
    if "speaker_similarity" in report:
        console.print(f"speaker similarity to the recordings (Resemblyzer cosine): "
                      f"{report['speaker_similarity']} - timbre is eSpeak's, not theirs")


def _cross_table(names: list[str], cross: dict[tuple[str, str], float]) -> Table:
    table = Table(title="Persona A vs B: held-out perplexity of each person's real answers "
                        "under each adapter", caption="lower is better; each column's lowest "
                  "should be on the diagonal (the person's own adapter)")
    table.add_column("adapter")
    for answers in names:
        table.add_column(f"{answers}'s answers")
    for adapter in names:
        table.add_row(adapter, *(f"{cross[adapter, answers]:.1f}"
                                 if (adapter, answers) in cross else "-" for answers in names))
    return table


def _fidelity_table(evaluations: dict[str, dict | None]) -> Table:
    from clone_pipeline.memory.fidelity import CONFIGURATIONS

    table = Table(title="Fidelity on each person's fact sheet (held-out questions; greedy)",
                  caption="fact recall: told questions answered with the expected words; "
                          "honest: never-told questions declined rather than invented")
    table.add_column("user")
    table.add_column("questions")
    for name in CONFIGURATIONS:
        table.add_column(f"{name}\nrecall / honest")
    for name, e in evaluations.items():
        fidelity = (e or {}).get("fidelity")
        if not fidelity:
            table.add_row(name, "no fact sheet", *["-"] * len(CONFIGURATIONS))
            continue
        scores = fidelity["scores"]
        table.add_row(name, f"{fidelity['told']} / {fidelity['never_told']}", *(
            f"{_share(scores[c]['fact_recall'])} / {_share(scores[c]['honest_abstention'])}"
            if c in scores else "unavailable" for c in CONFIGURATIONS))
    return table


def _share(value: float | None) -> str:
    return "-" if value is None else f"{value:.2f}"


def _evaluation_table(evaluations: dict[str, dict | None]) -> Table:
    bases = sorted({e["base_model"] for e in evaluations.values() if e}) or ["-"]
    table = Table(title=f"Adapters on held-out questions ({', '.join(bases)} base; measured, "
                        f"not estimated)")
    for col in ("user", "version", "perplexity base -> adapter", "beats base",
                "persona similarity (own / control)", "style distance (own / control)",
                "coherence base -> adapter"):
        table.add_column(col)
    for name, e in evaluations.items():
        if not e:
            table.add_row(name, "-", "not evaluated", "-", "-", "-", "-")
            continue
        table.add_row(name, f"v{e['version']}",
                      f"{e['base_perplexity']:.1f} -> {e['adapter_perplexity']:.1f}",
                      "yes" if e["beats_base"] else "no",
                      f"{e['persona_similarity']:.3f} / {e['control_similarity'] or 0:.3f}",
                      f"{e['style_distance']:.3f} / {e['control_style_distance'] or 0:.3f}",
                      f"{e['base_coherence']:.3f} -> {e['adapter_coherence']:.3f}")
    return table


@main.command()
@click.argument("run_id")
@click.option("--detailed", is_flag=True,
              help="Also show the loss progression and the GPU history.")
@click.option("--follow/--no-follow", default=True, show_default=True,
              help="Keep updating until the run ends.")
def progress(run_id: str, detailed: bool, follow: bool) -> None:
    """Live progress of a training run (its id or the Dagster run id)."""
    import time

    from clone_pipeline.services import training as runs

    settings = _settings()
    _ensure_ready(settings)
    run = runs.find_run(settings, run_id) or _wait_for_training(settings, run_id, follow)
    history: list[dict] = []
    with Progress(TextColumn("{task.description}"), BarColumn(),
                  TextColumn("{task.percentage:>5.1f}%"), TimeElapsedColumn(),
                  TextColumn("{task.fields[figures]}"), console=console) as bar:
        task = bar.add_task(f"{run['user']} ({run['status']})", total=100, figures="")
        while True:
            history += runs.metrics_after(settings, run["id"],
                                          history[-1]["step"] if history else -1)
            run = runs.find_run(settings, str(run["id"]))
            if history:
                bar.update(task, completed=history[-1]["percent_complete"] or 0,
                           description=f"{run['user']} ({run['status']})",
                           figures=_figures(history[-1]))
            if not follow or run["status"] != "running":
                break
            time.sleep(2)
    if run["error"]:
        console.print(f"error: {run['error']}")
    if detailed and history:
        console.print(_history_table(history))


def _wait_for_training(settings: Settings, run_id: str, follow: bool) -> dict:
    """The training run a Dagster run starts, once its training step begins: a run printed
    by `run` may still be preparing data, or queued."""
    import time

    from clone_pipeline.orchestration.runs import run_status
    from clone_pipeline.services import training as runs

    status = run_status(_instance(), run_id)
    with console.status(f"Dagster run {run_id} is {status}; waiting for its training step"):
        while status is not None and follow:
            found = runs.find_run(settings, run_id)
            if found is not None:
                return found
            if status in ("SUCCESS", "FAILURE", "CANCELED"):
                break
            time.sleep(2)
            status = run_status(_instance(), run_id)
    if status is None:
        raise click.ClickException(f"no training run or Dagster run {run_id!r} (clone-pipeline "
                                   f"runs lists recent runs)")
    raise click.ClickException(f"Dagster run {run_id} is {status} and has no training step "
                               f"{'yet' if not follow else ''}".strip())


def _figures(m: dict) -> str:
    def show(value, fmt, unit=""):
        return "unavailable" if value is None else f"{value:{fmt}}{unit}"

    gpu = ("GPU unavailable" if m["gpu_utilization"] is None and m["vram_used_mb"] is None
           else f"GPU {show(m['gpu_utilization'], '.0f', '%')} "
                f"{show(m['vram_used_mb'], '.0f', ' MB')} "
                f"{show(m['gpu_temperature_c'], '.0f', ' C')}")
    return (f"step {m['step']} loss {m['loss']:.4f} eval {show(m['eval_loss'], '.4f')} "
            f"{show(m['tokens_per_second'], '.0f', ' tok/s')} "
            f"ETA {show(m['eta_seconds'], '.0f', ' s')} {gpu}")


def _history_table(history: list[dict]) -> Table:
    """Loss progression and GPU history of a run, about 20 rows."""
    table = Table(title="Loss progression and GPU history")
    for col in ("step", "epoch", "loss", "eval loss", "lr", "tok/s", "GPU %", "VRAM MB",
                "temp C"):
        table.add_column(col, justify="right")
    stride = max(1, len(history) // 20)
    rows = history[::stride] + ([history[-1]] if (len(history) - 1) % stride else [])
    for m in rows:
        table.add_row(*(str(v) if v is not None else "-" for v in (
            m["step"], m["epoch"], m["loss"], m["eval_loss"],
            f"{m['learning_rate']:.2e}" if m["learning_rate"] is not None else None,
            m["tokens_per_second"], m["gpu_utilization"], m["vram_used_mb"],
            m["gpu_temperature_c"])))
    return table


@main.command()
@click.argument("external_id")
def models(external_id: str) -> None:
    """A user's model versions with their held-out figures; the current one is marked."""
    from clone_pipeline.services.model_versions import list_versions

    settings = _settings()
    _ensure_ready(settings)
    versions = list_versions(settings, external_id)
    if not versions:
        console.print(f"{external_id} has no model versions yet (clone-pipeline run "
                      f"{external_id} --job complete_workflow)")
        return
    table = Table(title=f"Model versions of {external_id} (perplexity: lower is better; "
                        f"similarity: higher is better)")
    for col in ("version", "current", "created", "base model", "held-out perplexity (base)",
                "persona similarity (control)"):
        table.add_column(col)
    for v in versions:
        def show(value, other):
            return "-" if value is None else f"{value} ({other})"

        table.add_row(f"v{v.version}", "[green]current[/green]" if v.current else "",
                      f"{v.created_at:%Y-%m-%d %H:%M}", v.base_model,
                      show(v.adapter_perplexity, v.base_perplexity),
                      show(v.persona_similarity, v.control_similarity))
    console.print(table)
    console.print("Why each was promoted, or not:")
    for v in versions:
        console.print(f"  v{v.version}: {v.note or 'not evaluated'}", markup=False,
                      soft_wrap=True)


@main.command()
@click.argument("external_id")
@click.argument("version")
def promote(external_id: str, version: str) -> None:
    """Make VERSION (3 or v3) the user's current model version, e.g. to roll back."""
    from clone_pipeline.services.model_versions import UnknownVersionError
    from clone_pipeline.services.model_versions import promote as promote_version

    number = version.lower().removeprefix("v")
    if not number.isdigit():
        raise click.ClickException(f"VERSION must be a number such as 3 or v3, not "
                                   f"{version!r}")
    settings = _settings()
    _ensure_ready(settings)
    try:
        note = promote_version(settings, external_id, int(number))
    except UnknownVersionError as exc:
        raise click.ClickException(str(exc)) from exc
    console.print(f"{external_id}: v{int(number)} is current ({note})", markup=False)


@main.command(name="runs")
@click.argument("external_id", required=False)
@click.option("--limit", default=20, show_default=True, help="How many runs, newest first.")
def runs_cmd(external_id: str | None, limit: int) -> None:
    """Recent Dagster runs (of one user, if given): status, times and what they made."""
    from clone_pipeline.orchestration.runs import recent_runs

    _ensure_ready(_settings())
    found = recent_runs(_instance(), external_id, limit)
    table = Table(title=f"Recent runs{f' of {external_id}' if external_id else ''}",
                  box=box.SIMPLE_HEAD, pad_edge=False)
    columns = ["run id", "job", *([] if external_id else ["user"]), "status", "started",
               "ended", "materialised"]
    for col in columns:
        table.add_column(col, no_wrap=col != "materialised", overflow="fold")
    for r in found:
        table.add_row(r.run_id, r.job, *([] if external_id else [r.user or "-"]), r.status,
                      f"{r.started:%m-%d %H:%M}" if r.started else "-",
                      f"{r.ended:%H:%M:%S}" if r.ended else "-",
                      ", ".join(r.materialized) or "nothing")
    console.print(table if found else "no runs recorded yet")


@main.command()
@click.option("--profile", default="auto", show_default=True,
              help="Hardware profile to resolve: auto, cpu, rtx5090, a100, h100.")
def gpu(profile: str) -> None:
    """GPU status read through NVML, and the training profile this machine gets."""
    from clone_pipeline.training.hardware import select_profile

    try:
        report = select_profile(profile)
    except (ValueError, RuntimeError) as exc:  # unknown profile, or a GPU profile on a CPU
        raise click.ClickException(str(exc)) from exc
    p = report.profile
    console.print(f"profile    {p.name} ({p.device}, {p.precision}, attention {p.attention}, "
                  f"gradient checkpointing {'on' if p.gradient_checkpointing else 'off'})")
    console.print(f"NVML       {report.nvml}")
    for g in report.gpus:
        def show(v, unit):
            return "unavailable" if v is None else f"{v:.0f}{unit}"

        console.print(f"GPU {g.index}      {g.name}: {g.memory_used_mb:.0f}/"
                      f"{g.memory_total_mb:.0f} MB, {show(g.utilization_pct, '%')}, "
                      f"{show(g.temperature_c, ' C')}, {show(g.power_w, ' W')}")
    if not report.gpus:
        console.print("GPUs       none found")


# The serving and operating commands live in their own modules; registered once the
# helpers above that they use exist.
from clone_pipeline.cli_operate import register as _register_operating  # noqa: E402
from clone_pipeline.cli_serving import register as _register_serving  # noqa: E402

_register_serving(main)
_register_operating(main)

if __name__ == "__main__":
    main()
