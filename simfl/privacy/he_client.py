"""A client's side of HE aggregation: its update leaves it only as CKKS ciphertexts.

After training (and after any clipping or attack mod inside this one), the client flattens
its update y - x over the arrays it sends, encrypts it with the run's secret context, decrypts
its own ciphertexts to measure the encryption error it adds to the sum, and replies with the
ciphertexts in place of its model. The reply's metrics say how long encryption took, the
error, and the ciphertexts' work for the simulated clock (:data:`PROTOCOL_SAMPLES_KEY`).
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from simfl.systems.clock import PROTOCOL_SAMPLES_KEY

if TYPE_CHECKING:
    from flwr.app import Context, Message

    from simfl.engine.plan import RunPlan

#: The reply's one array: the framed ciphertexts of the client's update.
CIPHERTEXT_KEY = "he-ciphertext"
ENCRYPT_SECONDS_KEY = "he-encrypt-s"
ERROR_KEY = "he-error"  # max |Dec(Enc(u)) - u| over the client's update u
SECRET_CONTEXT = "secret-context.bin"


def secret_context_path(plan: RunPlan) -> Path:
    """Where the key authority leaves the clients' context (the clients' private state)."""
    if plan.state_dir is None:
        raise RuntimeError("HE aggregation needs RunPlan.state_dir for the clients' keys")
    return plan.state_dir / "he" / SECRET_CONTEXT


def flat_update(sent: Any, trained: Any) -> np.ndarray:
    """y - x over the arrays the client received and sends back, in float64, in the order
    the server sent them (the order it adds the mean back in)."""
    return np.concatenate(
        [(trained[name].numpy().astype(np.float64) - sent[name].numpy()).ravel() for name in sent]
    )


def encryption_mod(plan: RunPlan) -> Any:
    """Replaces the reply's model by its encrypted update (see the module docstring)."""
    config = plan.scenario.privacy.he
    path = secret_context_path(plan)
    contexts: dict[Path, Any] = {}  # this actor's copy of the run's secret context

    def mod(message: Message, context: Context, call_next: Any) -> Message:
        from flwr.app import Array, ArrayRecord

        from simfl.privacy.he_ckks import decrypt, encrypt, load_context, to_bytes

        reply = call_next(message, context)
        if reply.has_error():
            return reply
        if path not in contexts:
            contexts[path] = load_context(path.read_bytes())
        update = flat_update(message.content["arrays"], reply.content["arrays"])
        start = time.perf_counter()
        vectors = encrypt(contexts[path], update, config.slots)
        data = to_bytes(vectors)
        seconds = time.perf_counter() - start
        error = float(np.max(np.abs(decrypt(vectors) - update))) if len(update) else 0.0
        reply.content["arrays"] = ArrayRecord(
            {CIPHERTEXT_KEY: Array(np.frombuffer(data, dtype=np.uint8))}
        )
        metrics = reply.content["metrics"]
        metrics[ENCRYPT_SECONDS_KEY] = seconds
        metrics[ERROR_KEY] = error
        metrics[PROTOCOL_SAMPLES_KEY] = len(vectors) * config.samples_per_ciphertext()
        return reply

    return mod
