"""``[privacy.he]`` as a feature: the clients' encryption mod, the server's HE aggregation
around the strategy (inside central DP's wrapper, which then noises the decrypted mean), and
a callback that records each round's cost and error bound."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from simfl.engine.extensions import ClientMod, EvaluationData, Feature, ModStage

if TYPE_CHECKING:
    from flwr.serverapp.strategy import Strategy

    from simfl.config import Scenario
    from simfl.engine.plan import RunPlan
    from simfl.engine.server_callbacks import ServerCallback


class HEFeature(Feature):
    """CKKS aggregation (see :mod:`simfl.privacy.he_server` and :mod:`~.he_client`)."""

    def __init__(self, scenario: Scenario) -> None:
        super().__init__(scenario)
        self.aggregation: Any = None  # the HE aggregation, once wrap_strategy has run

    @classmethod
    def applies(cls, scenario: Scenario) -> bool:
        return scenario.privacy.he.enabled

    def client_mods(self, plan: RunPlan) -> list[ClientMod]:
        from simfl.privacy.he_client import encryption_mod

        return [ClientMod(ModStage.ENCRYPTION, "train", encryption_mod(plan))]

    def wrap_strategy(self, plan: RunPlan, strategy: Strategy) -> Strategy:
        """Makes the run's keys: the clients' secret context into their private state, the
        public one to the server's aggregation, the secret key kept by the key authority."""
        from simfl.atomic import write_atomically
        from simfl.privacy.he_ckks import KeyAuthority
        from simfl.privacy.he_client import secret_context_path
        from simfl.privacy.he_server import HEAggregation

        authority = KeyAuthority(plan.scenario.privacy.he)
        path = secret_context_path(plan)
        path.parent.mkdir(parents=True, exist_ok=True)
        secret = authority.secret_context()
        write_atomically(path, lambda part: part.write_bytes(secret))
        self.aggregation = HEAggregation(strategy, authority)
        return self.aggregation

    def server_callbacks(self, plan: RunPlan, evaluation: EvaluationData) -> list[ServerCallback]:
        from simfl.privacy.he_server import HECallback

        return [HECallback(self.aggregation)] if self.aggregation is not None else []

    def summary(self) -> dict[str, Any]:
        he = self.scenario.privacy.he
        return {
            "scheme": "CKKS",
            "poly_modulus_degree": he.poly_modulus_degree,
            "coeff_mod_bit_sizes": list(he.coeff_mod_bit_sizes),
            "global_scale_bits": he.global_scale_bits,
            "security_bits": 128,
        }
