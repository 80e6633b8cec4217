"""Flower's SecAgg+ as simfl drives it: the legacy workflow, its records and its client mod.

In Flower 1.42 SecAgg+ exists only on the legacy workflow path: ``SecAggPlusWorkflow`` (of
``flwr.server.workflow``) drives a legacy strategy (``configure_fit``/``aggregate_fit``) through
a ``LegacyContext``, and ``secaggplus_mod`` (of ``flwr.client.mod``, not exported by
``flwr.clientapp.mod``) expects legacy ``FitIns``/``FitRes`` records. simfl's bridge
(:mod:`simfl.privacy.secagg`) keeps its own logic (the legacy cohort, the dropout mod, the
error bound) and builds and reads every legacy object through the functions here.

Assumptions (contract-tested in ``test_secagg.py``):

- ``secaggplus-workflow-drives-a-legacy-strategy``: ``SecAggPlusWorkflow(grid,
  LegacyContext)`` calls only ``context.strategy.configure_fit(round, parameters,
  client_manager)`` (then reads ``proxy.node_id``) and ``aggregate_fit(round, results,
  failures)`` with every result's ``parameters`` set to the unmasked weighted mean; it reads
  the round from ``context.state.config_records["config"]["current_round"]`` and the
  parameters from ``context.state.array_records["parameters"]``; it sends its stage in the
  ``"secaggplus_configs"`` config record (``"stage"``; ``"collect_masked_vectors"`` is the one
  that calls the client app, with the FitIns as legacy ``fitins.*`` records, and
  ``secaggplus_mod`` turns the app's reply back into a ``FitRes``); a halted protocol returns
  without calling ``aggregate_fit``.
"""

from __future__ import annotations

from typing import Any

import flwr.compat.common.recorddict_compat as compat
import numpy as np
from flwr.app import ArrayRecord, ConfigRecord, Context, RecordDict
from flwr.client.mod import secaggplus_mod
from flwr.common import (
    Code,
    FitIns,
    FitRes,
    Status,
    ndarrays_to_parameters,
    parameters_to_ndarrays,
)
from flwr.server.compat.legacy_context import LegacyContext
from flwr.server.workflow import SecAggPlusWorkflow
from flwr.server.workflow.constant import MAIN_CONFIGS_RECORD, MAIN_PARAMS_RECORD
from flwr.server.workflow.constant import Key as WorkflowKey

__all__ = [
    "COLLECT_STAGE",
    "SECAGG_RECORD",
    "STAGE_KEY",
    "fitins_content",
    "fitres_content",
    "legacy_context",
    "legacy_fitins",
    "legacy_ndarrays",
    "secaggplus_mod",
    "secaggplus_workflow",
]

#: The SecAgg+ workflow's config record, its stage key, and the stage after keys are shared
#: (the one that calls the client app).
SECAGG_RECORD = "secaggplus_configs"
STAGE_KEY, COLLECT_STAGE = "stage", "collect_masked_vectors"


def secaggplus_workflow(**settings: Any) -> SecAggPlusWorkflow:
    """Flower's SecAgg+ server workflow with these settings (``num_shares``, ...)."""
    return SecAggPlusWorkflow(**settings)


def legacy_context(server_round: int, reference: ArrayRecord, strategy: Any) -> LegacyContext:
    """The context the workflow runs ``server_round`` in: the round in the main config
    record, ``reference`` as legacy parameters, ``strategy`` as its legacy strategy."""
    state = RecordDict()
    state.config_records[MAIN_CONFIGS_RECORD] = ConfigRecord(
        {WorkflowKey.CURRENT_ROUND: server_round}
    )
    state.array_records[MAIN_PARAMS_RECORD] = compat.parameters_to_arrayrecord(
        ndarrays_to_parameters(reference.to_numpy_ndarrays()), keep_input=True
    )
    return LegacyContext(Context(0, 0, {}, state, {}), strategy=strategy)  # type: ignore[arg-type]


def legacy_fitins(ndarrays: list[np.ndarray], config: dict[str, Any]) -> FitIns:
    """The legacy ``FitIns`` a legacy strategy's ``configure_fit`` hands out."""
    return FitIns(ndarrays_to_parameters(ndarrays), config)


def legacy_ndarrays(parameters: Any) -> list[np.ndarray]:
    """Legacy ``Parameters`` (a ``FitRes``'s, the workflow's mean) as numpy arrays."""
    return parameters_to_ndarrays(parameters)


def fitins_content(content: RecordDict) -> tuple[list[np.ndarray], dict[str, Any]]:
    """A ``collect_masked_vectors`` message's legacy FitIns records: arrays and config."""
    fitins = compat.recorddict_to_fitins(content, keep_input=True)
    return parameters_to_ndarrays(fitins.parameters), dict(fitins.config)


def fitres_content(
    ndarrays: list[np.ndarray], num_examples: int, metrics: dict[str, Any]
) -> RecordDict:
    """A successful legacy ``FitRes`` as the reply content ``secaggplus_mod`` reads."""
    fitres = FitRes(Status(Code.OK, ""), ndarrays_to_parameters(ndarrays), num_examples, metrics)
    return compat.fitres_to_recorddict(fitres, keep_input=True)
