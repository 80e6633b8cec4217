"""whisper-asr pieces: offline tokenizer, transcript targets, training and greedy decoding, WER."""

from __future__ import annotations

import numpy as np
import torch

from simfl.data.settings import SynthPhrasesSettings
from simfl.data.synth_phrases import synthesize_phrases
from simfl.data.views import apply_view
from simfl.models.tokenizer import word_tokenizer
from simfl.models.whisper_asr import build_whisper_asr
from simfl.schema.model import WhisperAsrParams
from simfl.tasks import IGNORE, TranscriptionTask

TEXTS = ["go up", "turn left", "one two three"]


def task_and_model(pretrained: str | None = None):
    tokenizer = word_tokenizer(TEXTS)
    torch.manual_seed(0)
    params = WhisperAsrParams(
        name="whisper-asr", config_preset="test-small", input_frames=20, train_all=True,
        max_target_tokens=5, pretrained=pretrained,
    )  # fmt: skip
    model = build_whisper_asr(params, tokenizer)
    return TranscriptionTask(tokenizer, TEXTS, tokenizer.bos_token_id), model


def test_word_tokenizer_round_trips_and_targets_end_in_eos():
    task, _ = task_and_model()
    tok = task.tokenizer
    assert tok.convert_ids_to_tokens(list(range(4))) == ["<pad>", "<s>", "</s>", "<unk>"]
    assert task.decode(torch.tensor([[1, *tok("turn left")["input_ids"], 2]])) == ["turn left"]
    row = task.targets[2]
    assert row[row != IGNORE][-1] == tok.eos_token_id and (row != IGNORE).sum() == 4


def test_training_learns_to_transcribe_a_tiny_set():
    task, model = task_and_model()
    torch.manual_seed(1)
    x, y = torch.randn(3, 80, 24), torch.tensor([0, 1, 2])
    before = task.evaluate(model, x, y, batch_size=8)
    optimizer = torch.optim.Adam(model.parameters(), lr=3e-3)
    model.train()
    for _ in range(60):
        optimizer.zero_grad()
        loss, _ = task.batch_loss(model, x, y)
        loss.backward()
        optimizer.step()
    after = task.evaluate(model, x, y, batch_size=8)
    assert before.extra["wer"] > 0.5 and after.extra["wer"] == 0.0 and after.accuracy == 1.0
    assert after.loss < before.loss


def test_pretrained_asr_model_loads_from_a_local_save(tmp_path):
    _, model = task_and_model()
    model.whisper.save_pretrained(tmp_path / "asr")
    _, loaded = task_and_model(pretrained=str(tmp_path / "asr"))
    saved, got = model.state_dict(), loaded.state_dict()
    assert all(torch.equal(saved[k], got[k]) for k in saved)


def test_synth_phrases_speaker_is_deterministic_and_view_maps_texts():
    settings = SynthPhrasesSettings(phrases=("go up", "turn left"), digit_strings=1,
                                    num_speakers=3, clip_seconds=1.5)  # fmt: skip
    first, second = synthesize_phrases(settings, 1), synthesize_phrases(settings, 1)
    assert first.audio.shape == (3, 24_000) and np.array_equal(first.audio, second.audio)
    rows, labels, names = apply_view(first.texts, "transcripts")
    assert [names[label] for label in labels] == first.texts and len(rows) == 3
