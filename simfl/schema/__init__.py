"""The scenario's schema: pydantic sections that import no torch, Flower, datasets or pandas.

Why apart from the implementations: validating a scenario (``simfl validate``, every refusal
of bad input, a sweep's check of all its cells) must be fast and must not pull the training
stack into the process; implementations are looked up by name through :mod:`simfl.registry`
only when a run needs them.
"""
