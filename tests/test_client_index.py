import numpy as np

from simfl.data.client_index import ClientIndex
from simfl.seeding import derive_seed, rng_for


def test_client_index_splits_each_client_into_disjoint_local_train_and_test(tmp_path):
    parts = [np.arange(0, 10), np.arange(10, 13), np.arange(13, 40)]
    store_rows = np.arange(40) * 2  # the view keeps every other store row
    labels = np.arange(40) % 5
    index = ClientIndex.build(tmp_path / "idx", parts, store_rows, labels, 0.2, seed=1)
    assert index.num_clients == 3
    seen = []
    for cid, part in enumerate(parts):
        split = index.client(cid)
        rows = np.concatenate([split.train_rows, split.test_rows])
        assert np.array_equal(np.sort(rows), store_rows[part])
        assert len(split.test_rows) == max(1, round(len(part) * 0.2))
        assert np.array_equal(split.train_labels, labels[split.train_rows // 2])
        seen.append(rows)
    assert len(np.unique(np.concatenate(seen))) == 40


def test_client_index_is_reused_and_deterministic(tmp_path):
    parts = [np.arange(0, 20), np.arange(20, 50)]
    first = ClientIndex.build(tmp_path / "a", parts, np.arange(50), np.zeros(50), 0.3, seed=4)
    again = ClientIndex.build(tmp_path / "a", [np.arange(50)], np.arange(50), np.zeros(50), 0.3, 4)
    other = ClientIndex.build(tmp_path / "b", parts, np.arange(50), np.zeros(50), 0.3, seed=4)
    assert again.num_clients == 2  # cache hit: the existing index is opened, not rebuilt
    for cid in range(2):
        assert np.array_equal(first.client(cid).test_rows, other.client(cid).test_rows)
    assert not list(tmp_path.glob(".*"))  # no staging directories left behind


def test_derived_seeds_separate_purposes_clients_and_rounds():
    seeds = {
        derive_seed(0, "train", 1, 1),
        derive_seed(0, "train", 1, 2),
        derive_seed(0, "train", 2, 1),
        derive_seed(0, "sample-train", 1, 1),
        derive_seed(1, "train", 1, 1),
    }
    assert len(seeds) == 5
    assert derive_seed(0, "train", 1, 1) == derive_seed(0, "train", 1, 1) < 2**63
    assert rng_for(3, "x").random() == rng_for(3, "x").random()
