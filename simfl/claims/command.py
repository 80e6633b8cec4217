"""``simfl claims``: re-test the field's published effects with paired seeds.

Each claim file is a sweep (``simfl sweep`` runs, shards and SLURM-emits it as any other, and
its cells land in ``results/sweeps/``); this command runs the files' sweeps with the seeds
asked for (resuming what is done), computes every claim's verdict
(:mod:`simfl.claims.verdict`) and writes them to ``results/claims/<id>/``.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console

from simfl.claims.catalogue import CATALOGUE, ClaimFile, catalogue, select
from simfl.tracking.options import NestedMlflowOption, WandbOption, mlflow_flag, wandb_flag

console = Console()

QUICK_SEEDS, QUICK_ROUNDS = 2, 2


def claims_command(
    list_: Annotated[bool, typer.Option("--list", help="List the claims; run nothing.")] = False,
    claims: Annotated[
        str | None, typer.Option("--claims", help="Comma-separated claim ids (default: all).")
    ] = None,
    seeds: Annotated[
        int | None, typer.Option("--seeds", min=2, help="Seeds per arm (default 5; --quick 2).")
    ] = None,
    quick: Annotated[
        bool,
        typer.Option("--quick", help=f"{QUICK_ROUNDS} rounds: a smoke run, no verdict claimed."),
    ] = False,
    directory: Annotated[
        Path, typer.Option("--dir", help="The claim files' directory.", show_default=False)
    ] = CATALOGUE,
    set_: Annotated[
        list[str] | None, typer.Option("--set", "-s", help="Override a key in every claim file.")
    ] = None,
    alpha: Annotated[float, typer.Option(min=0.0, max=1.0, help="Level of the tests.")] = 0.05,
    wandb: WandbOption = None,
    mlflow: NestedMlflowOption = None,
) -> None:
    """Run the claims' paired experiments and say which effects reproduce here."""
    wandb = wandb_flag(wandb)
    chosen = select(catalogue(directory), claims.split(",") if claims else None)
    if list_:
        console.print(_listing(chosen), markup=False, highlight=False, soft_wrap=True)
        return
    uri = mlflow_flag(mlflow)
    count = seeds or (QUICK_SEEDS if quick else 5)
    overrides = [*(set_ or []), *([f"scenario.rounds={QUICK_ROUNDS}"] if quick else [])]
    if uri:  # reached before any cell runs
        from simfl.tracking.mlflow_store import connect

        connect(uri, "--mlflow")
        overrides.append(f"tracking.mlflow_uri={uri}")
    from simfl.claims.run import run_claims

    run_id = _run_id(chosen, count, overrides, quick)
    out_dir = run_claims(chosen, count, overrides, quick, alpha, wandb, run_id)
    console.print((out_dir / "claims.md").read_text(), markup=False, highlight=False)
    console.print(f"claims: {out_dir / 'claims.html'} (and .md, .csv)")


def _listing(files: list[ClaimFile]) -> str:
    """Each claim: its id and statement, then its source, outcome, direction and file."""
    blocks = [
        f"{claim.id}: {claim.statement}\n  source: {claim.source}; outcome: {claim.outcome}; "
        f"expected: {_direction(claim)}; file: {claim_file.path.name}"
        for claim_file in files
        for claim in claim_file.claims
    ]
    return "\n".join(blocks)


def _direction(claim) -> str:
    if claim.better is not None and claim.worse is not None:
        return f"{_where(claim.better)} better than {_where(claim.worse)}"
    return (
        " ".join(f"{term.weight:+g}×({_where(term.where)})" for term in claim.contrast()) + " > 0"
    )


def _where(where: dict) -> str:
    return ", ".join(f"{key}={value}" for key, value in where.items())


def _run_id(files: list[ClaimFile], seeds: int, overrides: list[str], quick: bool) -> str:
    """The results name of this selection: the same claims, seeds and overrides resume it."""
    ids = sorted(claim.id for claim_file in files for claim in claim_file.claims)
    blob = json.dumps({"claims": ids, "seeds": seeds, "set": overrides, "quick": quick})
    return f"claims-{hashlib.sha256(blob.encode()).hexdigest()[:8]}"
