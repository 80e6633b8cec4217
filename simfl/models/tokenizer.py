"""Transcript tokenizers for whisper-asr: a word-level one built offline, or a pretrained one.

Why: Whisper's own tokenizer cannot be downloaded offline, and a 50k-token vocabulary would
dwarf a test-size model anyway. The transcripts of a synthesized dataset use a few dozen words,
so a word-level ``PreTrainedTokenizerFast`` over exactly those words (sorted: the same ids in
every process) is built locally; with ``model.pretrained`` the checkpoint's tokenizer is used.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

PAD, BOS, EOS, UNK = "<pad>", "<s>", "</s>", "<unk>"
SPECIALS = (PAD, BOS, EOS, UNK)


def word_tokenizer(texts: Sequence[str]) -> Any:
    """Word-level tokenizer: the specials, then the sorted words of ``texts``."""
    from tokenizers import Tokenizer, models, pre_tokenizers
    from transformers import PreTrainedTokenizerFast

    words = sorted({word for text in texts for word in text.split()} - set(SPECIALS))
    vocab = {token: i for i, token in enumerate([*SPECIALS, *words])}
    backend = Tokenizer(models.WordLevel(vocab, unk_token=UNK))
    backend.pre_tokenizer = pre_tokenizers.WhitespaceSplit()
    return PreTrainedTokenizerFast(
        tokenizer_object=backend, pad_token=PAD, bos_token=BOS, eos_token=EOS, unk_token=UNK
    )


def transcript_tokenizer(pretrained: str | None, texts: Sequence[str]) -> Any:
    """The checkpoint's tokenizer when ``pretrained`` is set, else :func:`word_tokenizer`."""
    if not pretrained:
        return word_tokenizer(texts)
    from transformers import AutoTokenizer

    from simfl.models.whisper_common import load_pretrained

    return load_pretrained(AutoTokenizer, pretrained)
