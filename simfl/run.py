"""One scenario, end to end: data, federation, simulation, results."""

from __future__ import annotations

import shutil
import signal
import time
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from simfl.config import Scenario
from simfl.data.prepare import StageProgress
from simfl.engine.actor_restarts import ActorRestarts
from simfl.engine.checkpoint import (
    Checkpointer,
    RunCheckpoint,
    latest_checkpoint_dir,
    latest_checkpoint_round,
    load_checkpoint,
)
from simfl.engine.client_app import build_client_app
from simfl.engine.extensions import EvaluationData, feature_summaries, features_for
from simfl.engine.gpu_packing import pack_clients
from simfl.engine.interrupt import Interruption, RunInterrupted, exit_code
from simfl.engine.model_summary import model_summary
from simfl.engine.nodes import engine_slots
from simfl.engine.plan import RunPlan
from simfl.engine.runtime import RaySession, simulate
from simfl.engine.server_app import build_server_app
from simfl.engine.server_callbacks import ServerCallback
from simfl.errors import ResumableError, ScenarioError
from simfl.pipeline import prepare_run
from simfl.tracking.callbacks import CallbackList, History, RunCallback, RunInfo, Tracker
from simfl.tracking.results import ResultsWriter, new_run_dir
from simfl.tracking.summary import summarize


@dataclass(frozen=True)
class RunOutcome:
    run_dir: Path
    summary: dict
    history: History


def _speakers(metadata: Any) -> Any:
    """One speaker id per test row, where the dataset has them (the LiRA audit's split)."""
    return metadata["speaker_id"].to_numpy() if "speaker_id" in metadata else None


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")


@dataclass(frozen=True)
class RunOptions:
    """How a scenario runs and where it reports; the scenario alone decides its numbers.

    ``wandb_mode`` overrides the scenario's ``[tracking]``; a sweep's cell
    names its sweep (``wandb_group``) and the sweep's MLflow run (``mlflow_parent_run``).
    ``trackers`` observe the run besides the results directory and the registered trackers
    (the console);
    ``server_callbacks`` add metrics about the global model after every round, after central
    evaluation and the features' callbacks, or stop the run; ``resume`` continues
    ``run_dir`` from its newest checkpoint (from round 0 if it has none); ``interruption``
    (whose handlers the caller installs) stops the run after a round, checkpointed.
    """

    wandb_mode: str | None = None
    mlflow_parent_run: str | None = None
    trackers: Sequence[RunCallback] = ()
    progress: StageProgress | None = None
    verbose: bool = False
    run_dir: Path | None = None
    run_name: str | None = None
    wandb_group: str | None = None
    session: RaySession | None = None
    server_callbacks: Sequence[ServerCallback] = ()
    resume: bool = False
    interruption: Interruption | None = None  # the stop signals' state (simfl.engine.interrupt)


def run_scenario(scenario: Scenario, options: RunOptions = RunOptions()) -> RunOutcome:  # noqa: B008
    """Prepare data and split (nothing written to results yet), then simulate and record.

    Raises the run's error after its results directory has been marked failed, or
    :class:`~simfl.engine.interrupt.RunInterrupted` once it is marked interrupted. GPUs are
    taken as Ray declares them: the command line refuses a run that asks for GPUs where
    torch sees no CUDA (:func:`~simfl.engine.gpu_packing.require_cuda`) before calling this.
    """
    start = time.perf_counter()
    run_dir = options.run_dir or new_run_dir(scenario)
    trackers = registered_trackers(scenario, options)  # unreachable backends: refused here
    checkpoint = checkpoint_to_resume(run_dir, scenario) if options.resume else None
    pipeline = prepare_run(scenario, options.progress)
    data, federation = pipeline.data, pipeline.federation
    prepared = time.perf_counter()
    info = RunInfo(
        scenario,
        options.run_name or run_dir.name,
        run_dir,
        _now(),
        federation.clients,
        federation.scores,
        data.label_names,
        federation.figure,
        checkpoint.server_round if checkpoint else None,
    )
    history = History()
    if checkpoint is not None:
        history.rounds, history.failures = list(checkpoint.rounds), list(checkpoint.failures)
    chain = CallbackList(
        [ResultsWriter(run_dir, history if checkpoint else None), history, *trackers]
    )
    chain.callbacks.extend(options.trackers)
    # Clients' local parts (FedPer heads, FedBN statistics) live here during the run only.
    state_dir = Path(scenario.tracking.cache_dir) / "client-state" / run_dir.name
    shutil.rmtree(state_dir, ignore_errors=True)
    if checkpoint is not None:
        checkpoint.restore_client_state(state_dir)
    checkpointer = Checkpointer(
        run_dir, scenario.tracking.checkpoint_every, history, state_dir.resolve()
    )
    plan = RunPlan(
        scenario,
        federation.train_store,
        data.test.store_dir,
        federation.index_dir,
        data.num_classes,
        state_dir.resolve(),
        tuple(data.label_names),
    )
    model = model_summary(plan)  # builds the model: a bad model.pretrained fails here
    try:
        resources, packing = pack_clients(plan)  # GPU runs: measured clients per GPU
    except ScenarioError as error:
        raise error.with_source(scenario.source) from None
    evaluation = EvaluationData(data.test.rows, data.test.labels, _speakers(data.test.metadata))
    interruption = options.interruption or Interruption()
    restarts = ActorRestarts(scenario.resources.actor_restarts)
    try:
        chain.on_run_start(info)  # W&B login, results directory: failures mark the run failed
        server_app = build_server_app(
            plan, evaluation, chain, options.server_callbacks, checkpointer, checkpoint,
            interruption, restarts,
        )  # fmt: skip
        with interruption.simulating():
            concurrency = simulate(
                server_app,
                build_client_app(plan),
                engine_slots(scenario),
                resources,
                verbose=options.verbose,
                session=options.session,
                actor_died=restarts.actor_died,
            )
    except BaseException as error:
        timings = _timings(start, prepared, history)
        if interruption.requested:
            raise _interrupted(info, history, timings, interruption, chain) from None
        failed = summarize(info, history, "failed", timings, _now(), error=str(error))
        chain.on_run_failed({**failed, "model": model})
        if isinstance(error, ResumableError):  # a full disk, dying actors: one line + resume
            error.resume_with = error.resume_with or _resume_command(run_dir)
        elif (run_dir / "summary.json").exists():
            error.add_note(f"results (marked failed): {run_dir}")
        raise
    finally:
        shutil.rmtree(state_dir, ignore_errors=True)
    last = history.rounds[-1].round if history.rounds else 0
    if interruption.requested and last < scenario.scenario.rounds:
        timings = _timings(start, prepared, history)
        raise _interrupted(info, history, timings, interruption, chain)
    summary = summarize(info, history, "completed", _timings(start, prepared, history), _now())
    summary["model"] = model
    summary["throughput"] = throughput(history, concurrency)
    summary |= feature_summaries(features_for(scenario))
    if packing is not None:
        summary["gpu_packing"] = packing.as_dict()
    chain.on_run_end(summary)
    checkpointer.discard()
    return RunOutcome(run_dir, summary, history)


def _resume_command(run_dir: Path) -> str | None:
    """How to continue ``run_dir`` (None before it holds its scenario: nothing to resume)."""
    return f"simfl run --resume {run_dir}" if (run_dir / "scenario.toml").is_file() else None


def _interrupted(
    info: RunInfo,
    history: History,
    timings: dict[str, float | None],
    interruption: Interruption,
    chain: CallbackList,
) -> RunInterrupted:
    """The run marked interrupted (summary, W&B) after its last complete round, whose
    checkpoint it resumes from; the exception that says so."""
    signum = interruption.signum or signal.SIGTERM
    last = history.rounds[-1].round if history.rounds else 0
    summary = summarize(info, history, "interrupted", timings, _now())
    summary |= {"interrupted_by": signal.Signals(signum).name, "exit_code": exit_code(signum)}
    chain.on_run_failed(summary)
    return RunInterrupted.after_round(
        signum, info.run_dir, last, latest_checkpoint_round(info.run_dir)
    )


def registered_trackers(scenario: Scenario, options: RunOptions) -> list[Tracker]:
    """The registered trackers the scenario and options turn on, each checked (its backend
    reached) before anything is written."""
    from simfl import plugins

    trackers = [
        tracker
        for plugin in plugins.TRACKERS.values()
        if (tracker := plugin.load().for_run(scenario, options)) is not None
    ]
    for tracker in trackers:
        tracker.check()
    return trackers


def checkpoint_to_resume(run_dir: Path, scenario: Scenario) -> RunCheckpoint | None:
    """The newest checkpoint of ``run_dir``; None (and the directory cleared) if it has none.

    Without a checkpoint nothing of the interrupted attempt can be reused, so the run starts
    again from round 0 in the same directory.
    """
    directory = latest_checkpoint_dir(run_dir)
    if directory is None:
        shutil.rmtree(run_dir, ignore_errors=True)
        return None
    checkpoint = load_checkpoint(directory, str(run_dir))
    if checkpoint.server_round > scenario.scenario.rounds:
        raise ScenarioError(
            f"{run_dir}: checkpoint after round {checkpoint.server_round}, but the scenario "
            f"has {scenario.scenario.rounds} rounds"
        )
    return checkpoint


def throughput(history: History, concurrency: int) -> dict[str, float | int]:
    """How parallel the clients ran and how many client updates per second that gave."""
    rounds = [r for r in history.rounds if r.round > 0]
    train_seconds = sum(r.train_seconds for r in rounds)
    updates = sum(r.clients_succeeded for r in rounds)
    return {
        "concurrent_clients": concurrency,
        "client_updates_per_s": updates / train_seconds if train_seconds else 0.0,
    }


def _timings(start: float, prepared: float, history: History) -> dict[str, float | None]:
    """Wall time of the phases; ``engine_start_s`` is the engine's cold start: from the end of
    data preparation until the initial model's evaluation (round 0) is recorded, i.e. Ray,
    the actor pool, Flower's nodes and the first central evaluation."""
    end = time.perf_counter()
    ready = history.round_zero_at
    return {
        "data_prep_s": prepared - start,
        "engine_start_s": ready - prepared if ready is not None else None,
        "simulation_s": end - prepared,
        "total_s": end - start,
    }
