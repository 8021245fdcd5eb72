"""The program's stack config: the model of what `ambient-egress:` keys may say, its sources (a
stack file, the running stack) and the verdicts it promises. Built on the component library's value
types; the components never import it."""

from .errors import ConfigError
from .model import PROJECT, Access, Database, Grant, PortConfig, SampleRequest, Service, StackConfig
from .settings import BypassProtection
from .sources import StackFile, load_stack_file, parse_config, parse_pulumi_config, pulumi_form, read_stack_file

__all__ = [
    "PROJECT", "Access", "BypassProtection", "ConfigError", "Database", "Grant", "PortConfig", "SampleRequest",
    "Service", "StackConfig", "StackFile", "load_stack_file", "parse_config", "parse_pulumi_config", "pulumi_form",
    "read_stack_file",
]
