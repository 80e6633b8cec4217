"""Sweeps: a scenario's ``[sweep]`` grid run as cells that resume, shard and share one Ray."""
