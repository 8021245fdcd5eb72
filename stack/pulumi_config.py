"""The running stack's config, read through `pulumi.Config`."""

from __future__ import annotations

import pulumi

from .errors import ConfigError
from .model import PROJECT, StackConfig
from .sources import parse_pulumi_config


def config_keys() -> set[str]:
    """The names (never the values) of every config key the engine gave this program, in any
    namespace, so a misspelt namespace (`ambient-egres:grants`) is caught rather than ignored.

    `pulumi up` passes config in the environment; the automation API and the test mocks set it in
    the runtime. The SDK offers no listing, so both are read for their keys.
    """
    return {*pulumi.runtime.get_config_env(), *pulumi.runtime.config.CONFIG.get()}


def load_pulumi_config(project: str = PROJECT) -> StackConfig:
    """The stack's config, validated whole; a bad config stops the program before any resource."""
    config = pulumi.Config(project)
    prefix = f"{project}:"
    keys = config_keys()
    raw = {key: value for key in keys
           if (value := (config.get(key[len(prefix):]) if key.startswith(prefix) else "")) is not None}
    secrets = frozenset(key for key in keys if key.startswith(prefix) and pulumi.runtime.is_config_secret(key))
    try:
        return parse_pulumi_config(raw, project, secret_keys=secrets)
    except ConfigError as error:
        # RunError is shown to the user without a Python traceback.
        raise pulumi.RunError(str(error)) from error
