"""The clip format every keyword dataset shares: 1 s of 16 kHz audio labelled by its word.

synth-commands defines it and the real datasets are converted into it (the "synth-commands
contract"); the label views and the settings schema read these names too. Standard library only.
"""

from __future__ import annotations

SAMPLE_RATE = 16_000
CLIP_SAMPLES = SAMPLE_RATE  # one second
#: The ``word`` of noise-only clips (Speech Commands' name for its silence class).
SILENCE_LABEL = "_silence_"

#: The 35 words of Google Speech Commands v0.02, in alphabetical order.
SPEECH_COMMANDS_WORDS: tuple[str, ...] = (
    "backward", "bed", "bird", "cat", "dog", "down", "eight", "five", "follow", "forward",
    "four", "go", "happy", "house", "learn", "left", "marvin", "nine", "no", "off", "on", "one",
    "right", "seven", "sheila", "six", "stop", "three", "tree", "two", "up", "visual", "wow",
    "yes", "zero",
)  # fmt: skip
