import pickle

from partitioners.errors import PartitionError


def test_fields_text_and_nesting():
    error = PartitionError("alpha", "must be > 0, got 0.0")
    assert isinstance(error, ValueError)
    assert str(error) == "alpha: must be > 0, got 0.0"
    nested = error.within("label")
    assert (nested.param, nested.message) == ("label.alpha", "must be > 0, got 0.0")
    assert str(nested) == "label.alpha: must be > 0, got 0.0"


def test_survives_pickling_with_both_fields():
    again = pickle.loads(pickle.dumps(PartitionError("k", "allowed 1..5")))
    assert (type(again), again.param, again.message) == (PartitionError, "k", "allowed 1..5")
