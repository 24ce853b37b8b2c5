"""What an operator sees: metrics and trace set-up (``telemetry``), the worker's spans (``tracing``) and
the search attributes runs keep up to date (``visibility``).

May import: ``hitl._wire`` and the kernel leaves. Invariants: no argument, secret or decision payload in a
span, metric label or search attribute.
"""
