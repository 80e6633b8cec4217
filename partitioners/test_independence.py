"""partitioners/ is a package of its own: what importing it pulls in, checked in a fresh process."""

import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
SPLITTERS = "base compose dirichlet errors feature_shift iid label_shift natural quantity seeding"
HEAVY = ["simfl", "datasets", "flwr_datasets", "flwr", "torch", "scipy"]


def _top_level_modules_after(statement: str) -> set[str]:
    report = "print(' '.join({m.split('.')[0] for m in sys.modules}))"
    code = f"import sys\n{statement}\n{report}"
    done = subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, check=True
    )
    return set(done.stdout.split())


def test_params_import_only_stdlib_and_pydantic():
    loaded = _top_level_modules_after("import partitioners.params")
    assert {"pydantic", "partitioners"} <= loaded
    assert not loaded & {"numpy", "pandas", *HEAVY}


@pytest.mark.parametrize("statement", ["import partitioners", "from partitioners import errors"])
def test_the_package_itself_is_free_to_import(statement):
    assert not _top_level_modules_after(statement) & {"numpy", "pandas", "pydantic", *HEAVY}


def test_splitters_need_numpy_and_pandas_but_not_simfl_datasets_or_flower():
    imports = "\n".join(f"import partitioners.{name}" for name in SPLITTERS.split())
    loaded = _top_level_modules_after(imports)
    assert {"numpy", "pandas"} <= loaded
    assert not loaded & set(HEAVY)


def test_lazy_names_resolve_to_their_modules():
    import partitioners
    from partitioners.dirichlet import DirichletPartitioner
    from partitioners.errors import PartitionError

    assert partitioners.DirichletPartitioner is DirichletPartitioner
    assert partitioners.PartitionError is PartitionError
    with pytest.raises(AttributeError, match="no attribute 'Nope'"):
        _ = partitioners.Nope


def test_simfl_seeding_is_the_same_implementation():
    import partitioners.seeding
    import simfl.seeding

    assert simfl.seeding.derive_seed is partitioners.seeding.derive_seed
    assert simfl.seeding.rng_for is partitioners.seeding.rng_for
    # pinned values: every cached split and condition depends on them
    assert partitioners.seeding.derive_seed(0, "partition") == 8742097052740467191
    assert partitioners.seeding.derive_seed(7, "acoustic-noise", 3, 512) == 7650925336035548856
    assert partitioners.seeding.rng_for(5, "x", 1).integers(0, 1000, 3).tolist() == [797, 294, 707]
