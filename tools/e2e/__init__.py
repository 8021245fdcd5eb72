"""`make e2e`: from an empty kind cluster to a verified table, and back to nothing.

Checks the tools it needs (docker, kind, kubectl, pulumi) and stops before the first step with what
is missing and how to install it. Then: `kind create cluster`, MetalLB for LoadBalancer addresses,
the stack created in a fresh local Pulumi backend (or PULUMI_BACKEND_URL's), `pulumi up`,
`make verify`, `pulumi destroy`, a check that nothing the stack created is left, and
`kind delete cluster` (unless --keep-cluster). Teardown undoes whatever was done before a failure;
each step says what it runs, and a failure names its step and why.

Exit codes: 0 every step passed; 1 a step failed; 2 stopped before the first step.

  prerequisites   the tools, their versions and how to get them
  load_balancers  MetalLB and its address pool on the kind network (and why not cloud-provider-kind)
  processes       steps with their output streamed, checks quiet
  leftovers       what the stack created, looked for after destroy
  cli             the command line and the steps
"""

from .cli import main

__all__ = ["main"]
