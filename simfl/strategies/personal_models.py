"""Strategies whose clients keep a personal model of their own (Ditto's v_k, pFedMe's θ_i).

The personal model is the shared part of the model as the client last left it, kept in a
client state file (never sent). Its evaluation replaces the personalized figures
(``pers_loss``, ``pers_accuracy``) that the evaluate handler reports for the global model plus
the client's local part, so a personal-model strategy is reported as FedPer and FedBN are; a
client that has not trained yet is evaluated on the global model, as the handler does.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from simfl.engine.extensions import ClientMod, ModStage

if TYPE_CHECKING:
    import torch
    from flwr.app import Context, Message

    from simfl.engine.plan import RunPlan


def personal_store(plan: RunPlan, name: str) -> Any:
    from simfl.engine.client_state import ClientStateStore

    return ClientStateStore(plan.state_dir, name)  # type: ignore[arg-type]


def personal_evaluation(plan: RunPlan, name: str) -> ClientMod:
    """The evaluate handler's personalized figures, from the client's personal model."""

    def mod(message: Message, context: Context, call_next: Any) -> Message:
        reply = call_next(message, context)
        if reply.has_error():
            return reply
        from simfl.engine.worker import WORKER_CACHE
        from simfl.flower_compat.grid import message_partition
        from simfl.training import evaluate

        cid, state = message_partition(message), WORKER_CACHE.get(plan)
        personal = personal_store(plan, name).load(cid)
        if personal is None:
            return reply
        split = state.index.client(cid)
        features, labels = state.tensors(split.test_rows, split.test_labels)
        state.load(personal, state.own_local(cid))
        train = plan.scenario.train
        stats = evaluate(
            state.model, features, labels, train.eval_batch_size, state.task, train.precision
        )
        reply.content["metrics"]["pers_loss"] = stats.loss
        reply.content["metrics"]["pers_accuracy"] = stats.accuracy
        return reply

    return ClientMod(ModStage.TRAINER, "evaluate", mod)


def shared_copy(model: Any, shared: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """The model's current values of the ``shared`` entries, copied to the CPU."""
    state = model.state_dict()
    return {name: state[name].detach().cpu().clone() for name in shared}
