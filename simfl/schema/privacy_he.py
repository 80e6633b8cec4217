"""``[privacy.he]``: homomorphic-encryption aggregation with CKKS (TenSEAL).

The parameters are CKKS's own: the polynomial modulus degree N (N/2 values per ciphertext),
the bit sizes of the coefficient modulus primes and the scale of the encoding. Parameters
below 128-bit security are refused: the total coefficient modulus may not exceed the
HomomorphicEncryption.org standard's bound for N (Albrecht et al. 2018, Table 1, classical
128-bit security, ternary secrets), the bound SEAL itself enforces.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Literal

from pydantic import Field, model_validator

from simfl.schema.base import Section

if TYPE_CHECKING:
    from simfl.config import Scenario

#: The largest total coefficient modulus (bits) with 128-bit classical security, per N.
MAX_MODULUS_BITS_128 = {4096: 109, 8192: 218, 16384: 438, 32768: 881}

#: Strategies whose server rule runs on the weighted mean of the updates, all HE reveals.
HE_STRATEGIES = (
    "fedavg",
    "fedprox",
    "fedavgm",
    "fedadam",
    "fedyogi",
    "fedadagrad",
    "fedbn",
    "fedper",
)

#: The work of one ciphertext's encryption at the default parameters, in training samples
#: of the KWS CNN on the same machine (``simfl bench he`` measures it for a machine).
DEFAULT_CIPHERTEXT_SAMPLES = 2.0


class HEConfig(Section):
    """CKKS aggregation: clients encrypt their updates, the server adds ciphertexts."""

    enabled: bool = False
    """Aggregate encrypted updates: the server adds ciphertexts and only their sum is decrypted.
    Needs a mean-based strategy and no SecAgg+; central DP then needs client-side clipping."""
    poly_modulus_degree: Literal[4096, 8192, 16384, 32768] = 8192
    """CKKS polynomial modulus degree N: N/2 values per ciphertext; a larger N allows a larger
    coefficient modulus at a higher cost."""
    coeff_mod_bit_sizes: tuple[int, ...] = (60, 40, 40, 60)
    """Bit sizes of the coefficient modulus primes: at least 3 of 20 to 60 bits, totalling at
    most the 128-bit-security bound for N (109, 218, 438, 881 bits)."""
    global_scale_bits: int = Field(default=40, ge=20, le=60)
    """log2 of the CKKS encoding scale (the values' precision): at most every middle prime and
    below the first."""
    ciphertext_samples: float = Field(default=DEFAULT_CIPHERTEXT_SAMPLES, ge=0.0)
    """Simulated cost of encrypting one ciphertext at the default parameters, in training
    samples of the client's device (scaled by N log N and the number of primes for others)."""

    @model_validator(mode="after")
    def _secure_and_usable(self) -> HEConfig:
        bits, degree = self.coeff_mod_bit_sizes, self.poly_modulus_degree
        if len(bits) < 3 or any(not 20 <= b <= 60 for b in bits):
            raise ValueError(
                "privacy.he.coeff_mod_bit_sizes needs at least 3 primes of 20 to 60 bits "
                f"(the server multiplies by the weights once), not {list(bits)}"
            )
        limit = MAX_MODULUS_BITS_128[degree]
        if sum(bits) > limit:
            raise ValueError(
                f"privacy.he.coeff_mod_bit_sizes total {sum(bits)} bits, below 128-bit "
                f"security for poly_modulus_degree {degree} (at most {limit} bits)"
            )
        if any(b < self.global_scale_bits for b in bits[1:-1]) or bits[0] <= self.global_scale_bits:
            raise ValueError(
                f"privacy.he.global_scale_bits ({self.global_scale_bits}) must not exceed the "
                f"middle primes and must be below the first ({list(bits)})"
            )
        return self

    @property
    def slots(self) -> int:
        """Values one ciphertext holds."""
        return self.poly_modulus_degree // 2

    def samples_per_ciphertext(self) -> float:
        """:attr:`ciphertext_samples`, scaled from the defaults by N log N times the primes
        (the number-theoretic transforms an encryption runs)."""
        import math

        def work(degree: int, primes: int) -> float:
            return degree * math.log2(degree) * primes

        default = work(8192, 4)
        return (
            self.ciphertext_samples
            * work(self.poly_modulus_degree, len(self.coeff_mod_bit_sizes))
            / default
        )


def check_he(scenario: Scenario) -> None:
    """Rules against other tables: a mean-based strategy, no SecAgg+, clients clip for DP."""
    privacy, name = scenario.privacy, scenario.strategy.name
    if name not in HE_STRATEGIES:
        raise ValueError(
            f"privacy.he lets the server see only the weighted mean of the updates: "
            f"strategy.name = '{name}' needs more than that (allowed: {', '.join(HE_STRATEGIES)})"
        )
    if privacy.secagg.enabled:
        raise ValueError("privacy.he and privacy.secagg both hide updates: enable one of them")
    if privacy.central and privacy.clipping_side == "server":
        raise ValueError(
            "privacy.he hides individual updates from the server: central DP needs "
            "privacy.clipping_side = 'client'"
        )
