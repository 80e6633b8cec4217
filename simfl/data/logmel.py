"""Log-mel spectrograms of 16 kHz clips, the keyword-spotting models' input.

The filterbank is transformers' ``mel_filter_bank`` (HTK mel scale, no area normalization: the
semantics of ``torchaudio.functional.melscale_fbanks(..., norm=None, mel_scale="htk")``, which
cannot be used since torchaudio does not load); the STFT is torch's. What this module adds is
the front end simfl fixes for every dataset: int16 scaling, a centered STFT with a periodic Hann
window, the power spectrum, and ``log(mel + 1e-6)``.
"""

from __future__ import annotations

import numpy as np
import torch

from simfl.data.settings import FeatureSettings

LOG_EPS = 1e-6
INT16_SCALE = 1.0 / 32768.0


def mel_filterbank(settings: FeatureSettings) -> torch.Tensor:
    """Triangular HTK-mel filters [n_freqs, n_mels], computed in float64, returned as float32."""
    from transformers.audio_utils import mel_filter_bank

    filters = mel_filter_bank(
        num_frequency_bins=settings.n_freqs,
        num_mel_filters=settings.n_mels,
        min_frequency=settings.f_min,
        max_frequency=settings.f_max,
        sampling_rate=settings.sample_rate,
        norm=None,
        mel_scale="htk",
    )
    return torch.from_numpy(np.asarray(filters, dtype=np.float64)).to(torch.float32)


def to_float_audio(audio: torch.Tensor) -> torch.Tensor:
    """int16 PCM scaled by 1/32768, or floating-point audio as is, as float32."""
    if audio.dtype == torch.int16:
        return audio.to(torch.float32) * INT16_SCALE
    if audio.is_floating_point():
        return audio.to(torch.float32)
    raise TypeError(f"audio must be int16 PCM or floating point, got {audio.dtype}")


def log_mel(
    audio: torch.Tensor, settings: FeatureSettings, filterbank: torch.Tensor | None = None
) -> torch.Tensor:
    """Log-mel spectrogram of a batch: [B, T] int16 or float -> float32 [B, n_mels, frames].

    int16 input is scaled by 1/32768. Centered STFT (reflect padding) with a periodic Hann
    window, power spectrum, mel projection, then ``log(mel + 1e-6)``. Pass ``filterbank``
    (from :func:`mel_filterbank`) to avoid rebuilding it for every batch.
    """
    if audio.ndim != 2:
        raise ValueError(f"audio must be [B, T], got shape {tuple(audio.shape)}")
    wave = to_float_audio(audio)
    fb = mel_filterbank(settings) if filterbank is None else filterbank
    window = torch.hann_window(settings.win_length, dtype=torch.float32, device=wave.device)
    spec = torch.stft(
        wave,
        n_fft=settings.n_fft,
        hop_length=settings.hop_length,
        win_length=settings.win_length,
        window=window,
        center=True,
        pad_mode="reflect",
        return_complex=True,
    )  # [B, n_freqs, frames]
    power = spec.real.square() + spec.imag.square()
    mel = torch.matmul(fb.to(wave.device).T, power)  # [B, n_mels, frames]
    return torch.log(mel + LOG_EPS)
