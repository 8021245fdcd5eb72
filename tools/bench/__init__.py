"""`make bench`: the program, its SDK baseline, `make plan` and the analysis, measured at scale.

Run it as `python -m tools.bench` (see `__main__`). Modules, one job each:

    formula    the exact resource count of a stack of databases (pure; no Pulumi)
    topology   generated stacks: D databases, N namespaces, G grants
    baseline   the SDK's floor: the same registrations and reads with no logic
    measure    the measurements, each in a fresh subprocess, and their timing
    schedule   which sizes run within the budget; extrapolation of the rest
    layout     one AuthorizationPolicy per grant against one per database
    report     CSV, markdown tables and the plot
    profile    where the program's time goes, beside the baseline's

Nothing is imported here, so `tools.bench.formula` loads without Pulumi.
"""
