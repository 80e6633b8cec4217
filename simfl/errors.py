"""The errors simfl turns into one clear message and a non-zero exit code."""


class SimflError(Exception):
    """Base of every error simfl reports to the user without a traceback."""

    exit_code = 1


class ScenarioError(SimflError):
    """Bad input: a scenario file, an override or a CLI flag. Nothing has been written yet."""

    exit_code = 2


class ClientFailuresError(SimflError):
    """A round had fewer successful clients than the strategy needs (Flower only logs this)."""

    def __init__(self, round_number: int, succeeded: int, required: int, first_failure: str):
        self.round_number = round_number
        self.first_failure = first_failure
        super().__init__(
            f"round {round_number}: only {succeeded} client(s) succeeded, "
            f"{required} required (strategy.min_train_nodes). First client failure:\n"
            f"{first_failure}"
        )
