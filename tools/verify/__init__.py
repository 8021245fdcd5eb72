"""`make verify`: prove a deployed stack's access matrix on its live cluster.

The counterpart of the reference workshop's `run-test.sh test`, for every cell the plan computes.
The expected verdicts come from the deployed stack's outputs (`pulumi stack output --json`) or a
plan (`--plan build/plan/<stack>/plan.json`), never the local stack file. It first reads what the
mesh reports (the waypoint Programmed, each ServiceEntry bound, each policy accepted), then probes
from the test client pods: every (client, target) cell through the target's host and raw IP, every
HTTP sample request, and one destination no ServiceEntry declares.

It never reports a pass it did not see: a missing pod, a failed or timed-out `kubectl exec`, a host
that does not resolve or an unreadable object is an ERROR, never a DENY pass. Where no cluster is
reachable it stops before the first check and says why.

Exit codes: 0 every check passed; 1 at least one check failed (the cluster disagrees with the
expectations); 2 verification could not run, or some checks could not run (or none did) and none
failed.

  process       running commands (shared with `make e2e`)
  kubectl       kubectl against one context; the preflight
  expectations  the verdicts, from stack outputs or plan.json
  status        waypoint, ServiceEntry and policy conditions
  probes        pg_isready, HTTP and TCP probes, and what their output shows
  checks        which checks, from which pod, run in parallel, judged
  report        tables, notes, JSON, exit code
  cli           the command line
"""

from .cli import main

__all__ = ["main"]
