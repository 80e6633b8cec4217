"""Contract tests for :mod:`simfl.flower_compat.strategies`, one per named assumption."""

from __future__ import annotations

import inspect

import pytest
from flwr.serverapp.strategy import Bulyan, FedAdagrad, FedAdam, FedYogi, MultiKrum

from simfl.flower_compat.strategies import FedOpt, select_multikrum


@pytest.mark.parametrize("member", [FedAdam, FedYogi, FedAdagrad])
def test_fedopt_family_shares_a_fedopt_base(member: type) -> None:
    name = "fedopt-family-shares-a-fedopt-base"
    assert issubclass(member, FedOpt), f"{name}: {member.__name__} no longer derives from FedOpt"
    params = inspect.signature(FedOpt.__init__).parameters
    settings = {"eta": 0.3, "eta_l": 0.2, "beta_1": 0.9, "beta_2": 0.99, "tau": 0.01}
    for argument in settings:
        assert argument in params, f"{name}: FedOpt lost its {argument!r} argument"
    strategy = FedOpt(**settings)
    for attribute, value in settings.items():
        assert getattr(strategy, attribute) == value, f"{name}: FedOpt.{attribute}"
    for attribute in ("current_arrays", "m_t", "v_t"):
        assert getattr(strategy, attribute) is None, f"{name}: FedOpt.{attribute} not None"


def test_multikrum_selection_is_a_function() -> None:
    name = "multikrum-selection-is-a-function"
    params = list(inspect.signature(select_multikrum).parameters)
    assert params == ["contents", "num_malicious_nodes", "num_nodes_to_select"], (
        f"{name}: select_multikrum's signature is now {params}; simfl's recursive Krum "
        "(Bulyan's selection_rule) must follow it"
    )
    assert Bulyan().selection_rule is select_multikrum, (
        f"{name}: Bulyan's default selection_rule is no longer select_multikrum"
    )
    assert "select_multikrum(" in inspect.getsource(MultiKrum.aggregate_train), (
        f"{name}: MultiKrum no longer selects with select_multikrum"
    )
