"""What a model learns: keyword classification (the default) or speech-to-text transcription.

Why: the training loop, the clients and the server's evaluator are the same for both; only the
batch loss and the evaluation differ. A task supplies those two; ``None`` means classification
(cross-entropy on logits, accuracy), handled by :mod:`simfl.training` itself.

Transcription reads a row's transcript from its label: transcribed datasets use the
"transcripts" view, whose label names are the texts, so clients need nothing but the client
index they already have. Evaluation is greedy ``generate``, then WER and CER (``jiwer``) over
the whole set; "accuracy" is the fraction of exactly right transcripts.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import torch
from torch import nn

from simfl.training import LoopStats, device_of

if TYPE_CHECKING:
    from simfl.engine.plan import RunPlan

IGNORE = -100  # label id the seq2seq loss skips


class TranscriptionTask:
    """Seq2seq loss on tokenized transcripts; WER/CER of greedy transcripts."""

    def __init__(self, tokenizer: Any, texts: Sequence[str], start_token_id: int) -> None:
        self.tokenizer = tokenizer
        self.texts = list(texts)
        self.targets = self._targets(start_token_id)

    def _targets(self, start_token_id: int) -> torch.Tensor:
        """[num_labels, L] token ids of each transcript ending in EOS, padded with -100."""
        rows = []
        for text in self.texts:
            ids = list(self.tokenizer(text, add_special_tokens=True)["input_ids"])
            if ids and ids[0] == start_token_id:  # the model prepends its start token itself
                ids = ids[1:]
            if not ids or ids[-1] != self.tokenizer.eos_token_id:
                ids.append(self.tokenizer.eos_token_id)
            rows.append(ids)
        width = max(len(ids) for ids in rows)
        table = torch.full((len(rows), width), IGNORE, dtype=torch.long)
        for i, ids in enumerate(rows):
            table[i, : len(ids)] = torch.tensor(ids)
        return table

    def batch_loss(self, model: nn.Module, x: torch.Tensor, y: torch.Tensor) -> tuple[Any, int]:
        """Teacher-forced cross-entropy, and how many transcripts were right token by token."""
        labels = self.targets[y.cpu()].to(x.device)
        out = model(x, labels=labels)
        predicted = out.logits.argmax(dim=-1)
        mask = labels != IGNORE
        correct = int(((predicted == labels) | ~mask).all(dim=1).sum())
        return out.loss, correct

    def decode(self, ids: torch.Tensor) -> list[str]:
        texts = self.tokenizer.batch_decode(ids, skip_special_tokens=True)
        return [" ".join(text.split()) for text in texts]

    @torch.no_grad()
    def evaluate(
        self, model: nn.Module, features: torch.Tensor, labels: torch.Tensor, batch_size: int
    ) -> LoopStats:
        """Mean teacher-forced loss; greedy transcripts scored by exact match, WER and CER."""
        import jiwer

        model.eval()
        device = device_of(model)
        total_loss, hypotheses = 0.0, []
        for start in range(0, len(labels), batch_size):
            x = features[start : start + batch_size].to(device)
            y = labels[start : start + batch_size]
            loss, _ = self.batch_loss(model, x, y)
            total_loss += float(loss) * len(y)
            hypotheses += self.decode(model.transcribe(x).cpu())
        references = [self.texts[int(label)] for label in labels]
        n = len(references)
        if n == 0:
            return LoopStats(0.0, 0.0, 0, {"wer": float("nan"), "cer": float("nan")})
        exact = sum(h == r for h, r in zip(hypotheses, references, strict=True))
        extra = {
            "wer": float(jiwer.wer(references, hypotheses)),
            "cer": float(jiwer.cer(references, hypotheses)),
        }
        return LoopStats(total_loss / n, exact / n, n, extra)


def transcription_task(plan: RunPlan) -> TranscriptionTask:
    """The run's transcription task: its tokenizer and the transcripts of its labels."""
    from simfl.models.tokenizer import transcript_tokenizer

    params = plan.scenario.model
    tokenizer = transcript_tokenizer(params.pretrained, plan.label_names)
    start = tokenizer.convert_tokens_to_ids(tokenizer.bos_token) if tokenizer.bos_token else -1
    if params.pretrained:  # Whisper checkpoints start decoding at <|startoftranscript|>
        start = tokenizer.convert_tokens_to_ids("<|startoftranscript|>")
    return TranscriptionTask(tokenizer, plan.label_names, int(start))
