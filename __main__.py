"""Namespace-scoped egress access control on Istio ambient: the stack's config in, components out."""

import gc

import pulumi

from stack import outputs
from stack.access import granted, sample_requests
from stack.control import EgressAccessControl
from stack.pulumi_config import load_pulumi_config

# Pulumi keeps every pending Output alive until the run ends, so frequent collections find little
# to free and, with thousands of resources, took most of the run (docs/profile.md).
gc.set_threshold(50_000, 20, 100)

config = load_pulumi_config()
control = EgressAccessControl("egress", config)

pulumi.export("egressNamespace", control.gateway.namespace)
for key, door in control.door.items():
    pulumi.export(key, door)
pulumi.export("istioVersion", control.prerequisites.istio_version)
pulumi.export("databases", {
    name: {"host": database.host, "port": database.port} for name, database in control.databases.items()
})
pulumi.export("services", {
    name: {"host": service.host, "ports": [port.number for port in service.ports]}
    for name, service in control.services.items()
})
pulumi.export("credentials", {
    name: {"username": database.username, "password": database.password}
    for name, database in control.databases.items() if database.password is not None
})
# Granted cells only; every cell not listed is DENY.
pulumi.export("accessMatrix", granted(config))
# What `make verify` dials and sends, read from the deployed ServiceEntries.
pulumi.export("targets", outputs.targets(config, {
    **{name: database.service.service_entry for name, database in control.databases.items()},
    **{name: service.service_entry for name, service in control.services.items()},
}))
pulumi.export("sampleRequests", sample_requests(config))
pulumi.export("egressLockdown", outputs.egress_lockdown(config))
