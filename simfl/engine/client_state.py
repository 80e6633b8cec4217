"""Per-client state that outlives a round: one file per client, written atomically.

Ray actors serve many clients and may be restarted, so a client's FedBN statistics or FedPer
head cannot live in an actor's memory; keeping one small file per client on disk also keeps
10,000 clients' state out of RAM. Only the client itself reads or writes its file: the server
never sees it (it is never in a message).
"""

from __future__ import annotations

from pathlib import Path

import torch

from simfl.atomic import write_atomically


class ClientStateStore:
    """``directory/<name>-<id>.pt`` holding a dict of CPU tensors: ``client`` for the clients'
    local parts; a strategy with client state of its own (SCAFFOLD's c_i) uses its own name.
    Every file of the directory is in the run's checkpoints."""

    def __init__(self, directory: Path | str, name: str = "client") -> None:
        self.directory, self.name = Path(directory), name

    def path(self, cid: int) -> Path:
        return self.directory / f"{self.name}-{cid}.pt"

    def load(self, cid: int) -> dict[str, torch.Tensor] | None:
        """The client's saved state, or None before its first save."""
        path = self.path(cid)
        if not path.exists():
            return None
        return torch.load(path, map_location="cpu", weights_only=True)

    def save(self, cid: int, state: dict[str, torch.Tensor]) -> None:
        """Replace the client's file atomically: a restarted actor never reads half a state."""
        cpu_state = {k: v.detach().cpu() for k, v in state.items()}
        write_atomically(self.path(cid), lambda tmp: torch.save(cpu_state, tmp))
