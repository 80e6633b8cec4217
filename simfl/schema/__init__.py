"""The scenario's schema: pieces that import no torch, Flower, datasets or pandas."""
