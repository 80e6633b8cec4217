"""Contract test for :mod:`simfl.flower_compat.secagg`, and its legacy conversions."""

from __future__ import annotations

import inspect

import numpy as np
from flwr.app import Array, ArrayRecord

from simfl.flower_compat import secagg


def test_secaggplus_workflow_drives_a_legacy_strategy() -> None:
    from flwr.client.mod.secure_aggregation.secaggplus_mod import secaggplus_mod
    from flwr.common.secure_aggregation.secaggplus_constants import RECORD_KEY_CONFIGS, Key, Stage
    from flwr.server.workflow import SecAggPlusWorkflow
    from flwr.server.workflow.constant import MAIN_CONFIGS_RECORD, MAIN_PARAMS_RECORD
    from flwr.server.workflow.constant import Key as WorkflowKey

    name = "secaggplus-workflow-drives-a-legacy-strategy"
    assert (RECORD_KEY_CONFIGS, Key.STAGE) == (secagg.SECAGG_RECORD, secagg.STAGE_KEY), name
    assert Stage.COLLECT_MASKED_VECTORS == secagg.COLLECT_STAGE, name
    assert (MAIN_CONFIGS_RECORD, MAIN_PARAMS_RECORD) == ("config", "parameters"), name
    assert WorkflowKey.CURRENT_ROUND == "current_round", name
    assert secagg.secaggplus_mod is secaggplus_mod, name
    setup = inspect.getsource(SecAggPlusWorkflow.setup_stage)
    assert "context.strategy.configure_fit(" in setup and "proxy.node_id" in setup, name
    unmask = inspect.getsource(SecAggPlusWorkflow.unmask_stage)
    assert (
        "context.strategy.aggregate_fit(" in unmask and "fitres.parameters = parameters" in unmask
    ), name
    collect = inspect.getsource(secaggplus_mod)
    assert "call_next(msg, ctxt)" in collect and "recorddict_to_fitres" in collect, (
        f"{name}: secaggplus_mod no longer calls the app with FitIns in the collect stage"
    )


def test_legacy_records_round_trip_bit_for_bit() -> None:
    """FitIns built for the workflow read back as the same arrays and config; a FitRes as
    the same arrays, weight and metrics; the context holds the round and the parameters."""
    import flwr.compat.common.recorddict_compat as compat

    arrays = [np.arange(6, dtype=np.float32).reshape(2, 3), np.ones(2, dtype=np.float64)]
    fitins = secagg.legacy_fitins(arrays, {"server-round": 3})
    content = compat.fitins_to_recorddict(fitins, keep_input=True)
    back, config = secagg.fitins_content(content)
    assert config == {"server-round": 3}
    assert [a.tobytes() for a in back] == [a.tobytes() for a in arrays]
    assert [a.dtype for a in back] == [a.dtype for a in arrays]
    fitres = compat.recorddict_to_fitres(secagg.fitres_content(arrays, 7, {"loss": 0.5}), True)
    assert (fitres.num_examples, fitres.metrics) == (7, {"loss": 0.5})
    assert [a.tobytes() for a in secagg.legacy_ndarrays(fitres.parameters)] == [
        a.tobytes() for a in arrays
    ]
    reference = ArrayRecord({"w": Array(arrays[0])})
    context = secagg.legacy_context(5, reference, strategy=object())
    assert context.state.config_records["config"]["current_round"] == 5
    assert "parameters" in context.state.array_records
