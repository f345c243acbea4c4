"""esper-example-plugin: how a third-party distribution extends Esper.

Esper finds :mod:`esper_example_plugin.plugin` through the ``esper`` entry point declared in
``pyproject.toml``; that module registers a blueprint, a policy and a telemetry sink.
"""
