"""Privacy: central and local differential privacy, accounting, secure aggregation, audit.

What Flower and Opacus already do is used as is (Flower's DP strategy wrappers and client
mods, Opacus' per-sample clipping and accountant, Google's ``dp-accounting``); what simfl adds
is accounting for what really happened in each round (how many clients replied, their weights,
the clipping norm in force), seeded noise, and the membership-inference audit.
"""
