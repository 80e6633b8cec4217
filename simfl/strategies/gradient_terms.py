"""Terms a strategy adds to a client's gradients, whatever the scenario's trainer and optimizer.

SCAFFOLD adds its control-variate correction c - c_i to every local gradient, FedDyn the
gradient of its linear and quadratic penalties. Adding them to the gradient in the backward pass
(a tensor hook per parameter) leaves the trainer as it is (its batching, optimizer, momentum,
precision), so a strategy's client step is the scenario's training plus its term; torch's hooks
do the work, this module only composes them.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import torch

    from simfl.engine.worker import ClientWorkspace
    from simfl.training import LoopStats

#: ``term(grad, parameter) -> what to add to grad``, the parameter at its current value.
GradientTerm = Callable[["torch.Tensor", "torch.Tensor"], "torch.Tensor"]


def with_gradient_terms(inner: Any, terms: dict[str, GradientTerm], steps: list[int]) -> Any:
    """``inner`` (a trainer) with ``terms[name]`` added to the named parameters' gradients;
    ``steps`` receives one entry per backward pass (the optimizer steps taken)."""

    def train(work: ClientWorkspace) -> LoopStats:
        parameters = dict(work.model.named_parameters())
        hooks = [
            parameters[name].register_hook(
                lambda grad, term=term, p=parameters[name]: grad + term(grad, p.detach())
            )
            for name, term in terms.items()
        ]
        try:
            return counting(inner, steps)(work)
        finally:
            for hook in hooks:
                hook.remove()

    return train


def counting(inner: Any, steps: list[int]) -> Any:
    """``inner`` (a trainer), with one entry appended to ``steps`` per backward pass (one hook
    on the first trainable parameter: the optimizer steps the trainer takes)."""

    def train(work: ClientWorkspace) -> LoopStats:
        first = next(p for p in work.model.parameters() if p.requires_grad)
        hook = first.register_hook(lambda grad: steps.append(1))
        try:
            return inner(work)
        finally:
            hook.remove()

    return train


def constant(value: torch.Tensor) -> GradientTerm:
    """A term that is the same tensor at every step (SCAFFOLD's c - c_i)."""
    return lambda grad, parameter: value.to(grad.dtype)
