"""eSpeak NG through ctypes, one freshly loaded library per use, so no synthesizer state leaks.

Why not a Python wrapper: eSpeak keeps hidden state between utterances (pitch flutter index,
filter memories, a clock-seeded RNG), so the same call can give different samples depending on
what was synthesized before in the process. :class:`ESpeak` therefore loads the library (from
the ``espeakng_loader`` wheel), seeds it with ``espeak_ng_SetRandSeed``, and unloads it
(``dlclose``) on exit, verifying that the unload happened; the audio then depends only on what
is spoken inside one ``with`` block.
"""

from __future__ import annotations

import ctypes
import os
from typing import Any, Self

import numpy as np

#: eSpeak NG's output sample rate.
ESPEAK_RATE = 22_050
_AUDIO_OUTPUT_SYNCHRONOUS = 2
_INITIALIZE_DONT_EXIT = 0x8000
_POS_CHARACTER = 1
_CHARS_UTF8 = 1
_PARAM_RATE, _PARAM_VOLUME, _PARAM_PITCH, _PARAM_RANGE = 1, 2, 3, 4
_VOLUME = 40  # below the default 100 so loud variants do not clip inside eSpeak
_SYNTH_CALLBACK = ctypes.CFUNCTYPE(
    ctypes.c_int, ctypes.POINTER(ctypes.c_short), ctypes.c_int, ctypes.c_void_p
)


class ESpeak:
    """A freshly loaded, seeded eSpeak NG instance; unloaded on exit so no state leaks.

    Use as ``with ESpeak() as tts: tts.synth(...)``; not re-entrant, one at a time per process.
    """

    def __init__(self) -> None:
        import espeakng_loader

        self._lib_path = espeakng_loader.get_library_path()
        self._data_path = espeakng_loader.get_data_path()
        self._chunks: list[bytes] = []
        self._lib: ctypes.CDLL | None = None
        self._callback = _SYNTH_CALLBACK(self._collect)

    def __enter__(self) -> Self:
        if _is_loaded(self._lib_path):
            raise RuntimeError(
                "libespeak-ng is already loaded in this process; its state would leak"
            )
        lib = ctypes.CDLL(self._lib_path)
        lib.espeak_Initialize.argtypes = [ctypes.c_int, ctypes.c_int, ctypes.c_char_p, ctypes.c_int]
        lib.espeak_ng_SetRandSeed.argtypes = [ctypes.c_long]
        lib.espeak_SetVoiceByName.argtypes = [ctypes.c_char_p]
        lib.espeak_Synth.argtypes = [
            ctypes.c_char_p, ctypes.c_size_t, ctypes.c_uint, ctypes.c_int, ctypes.c_uint,
            ctypes.c_uint, ctypes.c_void_p, ctypes.c_void_p,
        ]  # fmt: skip
        self._lib = lib
        rate = lib.espeak_Initialize(
            _AUDIO_OUTPUT_SYNCHRONOUS, 0, self._data_path.encode(), _INITIALIZE_DONT_EXIT
        )
        if rate != ESPEAK_RATE:
            self.__exit__()
            raise RuntimeError(f"espeak_Initialize failed (returned {rate})")
        lib.espeak_SetSynthCallback(self._callback)
        return self

    def __exit__(self, *exc: object) -> None:
        import _ctypes

        if self._lib is None:
            return
        self._lib.espeak_Terminate()
        _ctypes.dlclose(self._lib._handle)
        self._lib = None
        if _is_loaded(self._lib_path):
            raise RuntimeError("libespeak-ng stayed loaded after dlclose; audio would not be fresh")

    def synth(
        self, text: str, voice: str, *, rate: int, pitch: int, pitch_range: int, seed: int
    ) -> np.ndarray:
        """Speak ``text``; int16 mono samples at 22050 Hz."""
        lib = self._lib
        assert lib is not None, "use ESpeak as a context manager"
        if lib.espeak_SetVoiceByName(voice.encode()) != 0:
            raise ValueError(f"unknown eSpeak voice {voice!r}")
        params = {_PARAM_RATE: rate, _PARAM_PITCH: pitch, _PARAM_RANGE: pitch_range}
        for param, value in {**params, _PARAM_VOLUME: _VOLUME}.items():
            lib.espeak_SetParameter(param, value, 0)
        lib.espeak_ng_SetRandSeed(seed)
        self._chunks.clear()
        data = text.encode()
        status = lib.espeak_Synth(
            data, len(data) + 1, 0, _POS_CHARACTER, 0, _CHARS_UTF8, None, None
        )
        if status != 0 or lib.espeak_Synchronize() != 0:
            raise RuntimeError(f"espeak_Synth failed for {text!r} with status {status}")
        return np.frombuffer(b"".join(self._chunks), dtype=np.int16)

    def _collect(self, wav: Any, num_samples: int, _events: Any) -> int:
        if num_samples > 0 and wav:
            self._chunks.append(ctypes.string_at(wav, num_samples * 2))
        return 0  # 0 = continue synthesis


def _is_loaded(path: str) -> bool:
    """True if the shared library at ``path`` is mapped in this process (RTLD_NOLOAD probe)."""
    try:
        handle = ctypes.CDLL(path, mode=os.RTLD_NOLOAD | os.RTLD_LAZY)
    except OSError:
        return False
    import _ctypes

    _ctypes.dlclose(handle._handle)  # drop the reference the probe just took
    return True
