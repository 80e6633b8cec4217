import numpy as np
import pytest
from pydantic import ValidationError

from partitioners.compose import ComposePartitioner
from partitioners.dirichlet import DirichletPartitioner
from partitioners.errors import PartitionError
from partitioners.params import ComposeParams, DirichletParams, LogNormalParams, PowerLawParams
from partitioners.quantity import QuantityPartitioner

LABELS = np.random.default_rng(0).integers(0, 12, size=3000)


def _error(clients: int, params: dict) -> tuple[str, str]:
    with pytest.raises(PartitionError) as error:
        ComposePartitioner(clients, ComposeParams.model_validate(params), 0).split(LABELS)
    return error.value.param, error.value.message


def test_quantity_sub_table_is_chosen_by_its_kind():
    params = ComposeParams.model_validate({"quantity": {"kind": "lognormal", "sigma": 0.5}})
    assert params.quantity == LogNormalParams(sigma=0.5)
    with pytest.raises(ValidationError, match="'powerlaw', 'lognormal', 'dirichlet-sizes'"):
        ComposeParams.model_validate({"quantity": {"kind": "zipf"}})
    with pytest.raises(ValidationError, match="Unable to extract tag using discriminator 'kind'"):
        ComposeParams.model_validate({"quantity": {"min_size": 5}})  # the default does not pick
    with pytest.raises(ValidationError, match="compose needs at least one of"):
        ComposeParams()


def test_label_only_is_the_dirichlet_split_and_quantity_only_the_quantity_split():
    label = ComposePartitioner(8, ComposeParams(label=DirichletParams(alpha=0.4)), 5)
    plain = DirichletPartitioner(8, DirichletParams(alpha=0.4), 5)
    sizes = ComposePartitioner(8, ComposeParams(quantity=PowerLawParams()), 5)
    quantity = QuantityPartitioner(8, PowerLawParams(), 5)
    for composed, alone in ((label, plain), (sizes, quantity)):
        pairs = zip(composed.split(LABELS), alone.split(LABELS), strict=True)
        assert all(np.array_equal(a, b) for a, b in pairs)
    assert label.client_conditions() is None


def test_errors_name_the_sub_table_that_set_the_parameter():
    assert _error(400, {"label": {"alpha": 1.0, "min_size": 10}}) == (
        "label.min_size",
        "400 clients x min_size 10 need 4000 samples, the dataset has 3000; allowed min_size <= 7",
    )
    larger_quantity_minimum = {
        "label": {"alpha": 1.0, "min_size": 1},
        "quantity": {"kind": "powerlaw", "min_size": 100},
    }
    assert _error(40, larger_quantity_minimum) == (
        "quantity.min_size",
        "40 clients x min_size 100 need 4000 samples, the dataset has 3000; allowed min_size <= 75",
    )
    assert _error(40, {"quantity": {"kind": "powerlaw", "min_size": 100}}) == (
        "quantity.min_size",
        "40 clients x min_size 100 need 4000 samples, the dataset has 3000",
    )
    assert _error(4000, {"acoustic": {}}) == (
        "num_partitions",
        "4000 clients but the dataset has 3000 samples; allowed 1..3000",
    )
