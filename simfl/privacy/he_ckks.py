"""CKKS vectors of any length with TenSEAL, and the key authority that alone decrypts sums.

TenSEAL encrypts a vector longer than one ciphertext's N/2 slots itself, but prints a warning
from C++ for every such vector; here a vector is cut into ciphertexts of N/2 values each, and
its bytes are the ciphertexts' serializations with their lengths. What TenSEAL adds: CKKS
(SEAL) itself; what ours adds: the framing, the sum of framed vectors with plaintext weights,
and who holds which key.

Keys: :class:`KeyAuthority` makes one CKKS context per run. The clients get the secret
context (they encrypt, and measure their own encryption error); the server gets the public
one, which cannot decrypt; the authority decrypts only what the server hands it, the weighted
sum of a round's updates.
"""

from __future__ import annotations

import struct
from typing import TYPE_CHECKING, Any

import numpy as np

if TYPE_CHECKING:
    from simfl.schema.privacy_he import HEConfig

_LENGTH = struct.Struct("<Q")


def new_context(config: HEConfig) -> Any:
    """A fresh CKKS context (secret key included) with the configured parameters."""
    import tenseal as ts

    context = ts.context(
        ts.SCHEME_TYPE.CKKS,
        poly_modulus_degree=config.poly_modulus_degree,
        coeff_mod_bit_sizes=list(config.coeff_mod_bit_sizes),
    )
    context.global_scale = 2.0**config.global_scale_bits
    return context


def load_context(data: bytes) -> Any:
    import tenseal as ts

    return ts.context_from(data)


def encrypt(context: Any, values: np.ndarray, slots: int) -> list[Any]:
    """``values`` as CKKS vectors of at most ``slots`` values each."""
    import tenseal as ts

    flat = np.asarray(values, dtype=np.float64).ravel()
    return [ts.ckks_vector(context, flat[i : i + slots]) for i in range(0, len(flat), slots)]


def decrypt(vectors: list[Any]) -> np.ndarray:
    """The values of vectors whose context holds the secret key."""
    return np.concatenate([np.asarray(vector.decrypt(), dtype=np.float64) for vector in vectors])


def to_bytes(vectors: list[Any]) -> bytes:
    parts = [vector.serialize() for vector in vectors]
    return b"".join(_LENGTH.pack(len(part)) + part for part in parts)


def from_bytes(context: Any, data: bytes) -> list[Any]:
    """The vectors :func:`to_bytes` framed, linked to ``context``."""
    import tenseal as ts

    vectors, offset = [], 0
    while offset < len(data):
        (length,) = _LENGTH.unpack_from(data, offset)
        offset += _LENGTH.size
        vectors.append(ts.ckks_vector_from(context, data[offset : offset + length]))
        offset += length
    return vectors


def weighted_sum(context: Any, blobs: list[bytes], weights: list[float]) -> list[Any]:
    """Σ w_i · c_i over framed ciphertexts, with each weight a plaintext scalar: what the
    server computes, with the public context only."""
    total: list[Any] | None = None
    for blob, weight in zip(blobs, weights, strict=True):
        scaled = [vector * float(weight) for vector in from_bytes(context, blob)]
        total = scaled if total is None else [a + b for a, b in zip(total, scaled, strict=True)]
    if total is None:
        raise ValueError("no ciphertexts to add")
    return total


class KeyAuthority:
    """Makes the run's CKKS keys and decrypts the sums the server hands it, nothing else."""

    def __init__(self, config: HEConfig) -> None:
        self._context = new_context(config)

    def secret_context(self) -> bytes:
        """The context with its secret key: the clients' copy."""
        return self._context.serialize(
            save_secret_key=True, save_galois_keys=False, save_relin_keys=False
        )

    def public_context(self) -> bytes:
        """The context without its secret key: the server's copy."""
        return self._context.serialize(
            save_secret_key=False, save_galois_keys=False, save_relin_keys=False
        )

    def decrypt_sum(self, data: bytes) -> np.ndarray:
        """The values of a round's weighted sum (its framed ciphertexts)."""
        return decrypt(from_bytes(self._context, data))
