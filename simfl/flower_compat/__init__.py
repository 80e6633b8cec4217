"""Everything simfl relies on that Flower does not offer as public API, split by job.

Why: Flower 1.42's simulation engine has no hook for what a benchmark needs: reusing actors
across the runs of a sweep, seeding node sampling, 10^5 clients on a cohort's worth of nodes,
several clients per actor call, reproducible and exact DP, SecAgg+ inside a Message-API round,
a strategy's state in a checkpoint, and an engine that does not poll. Each module here leans
on a few Flower internals for one of those jobs; each internal it relies on is a named
assumption, listed with its text in the module's docstring and checked by a contract test in
the ``test_<module>.py`` beside it, so a Flower upgrade that changes one fails there, loudly,
under that name, instead of silently changing results.

The rule: no module outside this package imports a non-public Flower module
(``tests/test_layering.py`` enforces it). Flower's public API is ``flwr.app``,
``flwr.clientapp``, ``flwr.clientapp.mod``, ``flwr.serverapp``, the names
``flwr.serverapp.strategy`` exports (its ``__all__``, not its submodules) and the names
``flwr.simulation`` exports; everything else (``flwr.common``, ``flwr.server``,
``flwr.client``, ``flwr.compat``, ``flwr.supercore``, ``flwr.superlink``, ``flwr.proto``,
submodules of the public modules) is internal.

This ``__init__`` imports nothing: callers import the submodule they need, so a Ray actor
that needs message helpers does not load the engine's patches.

Assumption -> module that relies on it -> contract test (in ``test_<module>.py``):

==========================================================  ==============  ==================
``run-simulation-runs-both-apps-in-process``                 transport       test_transport
``engine-looks-up-ray-backend-by-name``                      transport       test_transport
``ray-backend-keeps-pool-and-settings``                      transport       test_transport
``engine-runs-one-thread-per-actor-in-a-default-pool``       transport       test_transport
``engine-threads-wait-a-second-on-their-queues``             transport       test_transport
``engine-moves-messages-in-a-polling-thread``                wakeups         test_wakeups
``engine-stores-replies-in-a-thread-the-server-pulls``       wakeups         test_wakeups
``actor-pool-kills-only-idle-actors``                        actors          test_actors
``actor-pool-submits-and-returns-actors``                    actors          test_actors
``strategies-sample-with-module-random``                     grid            test_grid
``partition-id-key-is-flowers``                              grid            test_grid
``strategies-sample-fraction-or-min-nodes``                  grid            test_grid
``strategies-read-cohort-attributes-when-configuring``       grid            test_grid
``reply-sender-read-from-metadata-dict``                     messages, grid  test_messages
``message-made-with-given-metadata``                         messages        test_messages
``client-app-exception-worded-as-flowers``                   messages        test_messages
``dp-noise-draws-from-numpy-global``                         dp              test_dp
``dp-clipping-imported-by-name-and-inexact``                 dp              test_dp
``adaptive-clipping-norm-sign-inverted``                     dp              test_dp
``dp-wrappers-keep-strategy-and-norm``                       dp              test_dp
``secaggplus-workflow-drives-a-legacy-strategy``             secagg          test_secagg
``strategy-state-in-named-attributes``                       strategy_state  test_strategy_state
``check-and-log-replies-filters-and-checks``                 strategy_state  test_strategy_state
``fedopt-family-shares-a-fedopt-base``                       strategies      test_strategies
``multikrum-selection-is-a-function``                        strategies      test_strategies
==========================================================  ==============  ==================

Each test is named after its assumption (``test_<name with underscores>``). The Flower version
these were read against is checked in ``test_version.py``. ``patching.py`` holds the one
helper the engine patches share (a name swapped in a Flower module for one block).
"""
