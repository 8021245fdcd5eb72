"""Namespace-scoped egress access control on Istio ambient: config in, components out."""

import pulumi

from components import EgressAccessControl, load_pulumi_config

config = load_pulumi_config()
control = EgressAccessControl("egress", config)

pulumi.export("egressNamespace", control.gateway.namespace)
pulumi.export("waypoint", control.gateway.waypoint_name)
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
pulumi.export("accessMatrix", config.access_matrix())
