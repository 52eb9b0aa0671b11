"""clone-pipeline demo: the bundled personas imported and run through the whole pipeline,
served and voiced, with a table for each stage."""

from __future__ import annotations

import os
import time

import click
from rich.markup import escape
from rich.progress import BarColumn, Progress, SpinnerColumn, TextColumn, TimeElapsedColumn
from rich.table import Table

from clone_pipeline.cli.common import QUIET_RUN, console, dagster_instance, print_outcome, ready
from clone_pipeline.settings import Settings
from clone_pipeline.training.base_models import DEFAULT_BASE_MODEL


@click.command()
@click.option("--skip-import", is_flag=True, help="Use the personas already imported.")
@click.option("--voice/--no-voice", default=True, show_default=True,
              help="Build voice profiles and voice-text alignments for every persona.")
@click.option("--train/--no-train", default=True, show_default=True,
              help="Also train and evaluate an adapter for each ready persona (CPU preset).")
def demo(skip_import: bool, voice: bool, train: bool) -> None:
    """Import the bundled demo personas and run the pipeline for each through Dagster: the
    data stages, then training and evaluation for the ready ones, with a summary."""
    from clone_pipeline.demo import persona_dirs
    from clone_pipeline.launch.launch import asset_config, run_job_for_user
    from clone_pipeline.launch.names import COMPLETE_WORKFLOW, DATA_ONLY, VOICE_INTEGRATION
    from clone_pipeline.services.evaluation import cross_perplexity, latest_evaluation
    from clone_pipeline.services.fidelity import store_fact_sheet
    from clone_pipeline.services.ingest import import_export
    from clone_pipeline.services.users import overview
    from clone_pipeline.services.voice import latest_voice
    from clone_pipeline.training.config import PRESETS

    settings = ready(create=True)
    personas = persona_dirs()
    instance = dagster_instance()
    outcomes = {}
    clock = _Clock()
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
            outcomes[folder.name] = run_job_for_user(instance, DATA_ONLY, folder.name,
                                                     QUIET_RUN)
            progress.advance(task)
    clock.lap(f"import and data stages, {len(personas)} personas")
    table = _readiness_table(overview(settings, only=set(outcomes)), with_sizes=True)
    console.print(table)
    for name, outcome in outcomes.items():
        print_outcome(name, outcome)
    ready_ones = [name for name, outcome in outcomes.items() if outcome.success]
    if train and ready_ones:
        config = {**QUIET_RUN, **asset_config({"trained_adapter": PRESETS["cpu_demo"]})}
        with console.status(f"training and evaluating on {DEFAULT_BASE_MODEL} (the first run "
                            f"prepares the base model once)") as status:
            for name in ready_ones:
                status.update(f"complete_workflow for {name}")
                outcome = run_job_for_user(instance, COMPLETE_WORKFLOW, name, config)
                print_outcome(name, outcome)
                clock.lap(f"complete_workflow for {name}", instance, outcome.run_id)
        evaluations = {name: latest_evaluation(settings, name) for name in ready_ones}
        console.print(_evaluation_table(evaluations))
        console.print(_fidelity_table(evaluations))
        if len(ready_ones) > 1:
            with console.status("each adapter on every person's held-out answers"):
                cross = cross_perplexity(settings, ready_ones)
            console.print(_cross_table(ready_ones, cross))
            clock.lap("the A-vs-B table")
        _serve_and_ask(instance, settings, ready_ones)
        clock.lap("engine start, deployments, questions and answers")
    if voice:
        with console.status("voice profiles and alignment") as status:
            for name in outcomes:
                status.update(f"voice_integration for {name}")
                print_outcome(name, run_job_for_user(instance, VOICE_INTEGRATION, name,
                                                      QUIET_RUN))
        voices = {name: latest_voice(settings, name) for name in outcomes}
        clock.lap(f"voice profiles and alignment, {len(outcomes)} personas")
        console.print(_voice_table(voices))
        console.print("Hear a reply in a profile-matched voice (prosody matching, not "
                      "cloning):\n  clone-pipeline speak margaret-ellis \"Hello, love.\" "
                      "--out reply.wav")
    console.print(clock.table())
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
    from clone_pipeline.serving.demo import ANSWER_SAMPLING, deploy_and_ask

    try:
        with console.status("serving") as status:
            served = deploy_and_ask(instance, settings, names, QUIET_RUN,
                                    say=lambda text: status.update(text))
    except (EngineError, EngineNotInstalledError) as exc:
        console.print(f"[red]serving failed:[/red] {escape(str(exc))}")
        return
    table = Table(title="Served through the gateway (POST /v1/chat/completions)",
                  caption=f"greedy with frequency penalty {ANSWER_SAMPLING['frequency_penalty']}, "
                          f"{ANSWER_SAMPLING['max_tokens']} tokens at most; base model "
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


class _Clock:
    """Where the demo's time went: wall-clock seconds per phase, and per step of a run."""

    def __init__(self):
        self.start = self.last = time.monotonic()
        self.rows: list[tuple[str, float]] = []

    def lap(self, phase: str, instance=None, run_id: str | None = None) -> None:
        now = time.monotonic()
        self.rows.append((phase, now - self.last))
        self.last = now
        if run_id is not None:
            from clone_pipeline.launch.runs import step_seconds

            for step, seconds in step_seconds(instance, run_id).items():
                if seconds >= 1:
                    self.rows.append((f"  step {step}", seconds))

    def table(self) -> Table:
        table = Table(title="Where the time went (wall clock)")
        table.add_column("phase")
        table.add_column("time", justify="right")
        for phase, seconds in [*self.rows, ("total", time.monotonic() - self.start)]:
            minutes, rest = divmod(round(seconds), 60)
            table.add_row(phase, f"{minutes} min {rest} s" if minutes else f"{rest} s")
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


COMMANDS = (demo,)
