"""Stack configuration: schema, loading and validation."""

from .loader import ConfigError, load_from_pulumi, validate_config
from .schema import StackConfig
from .stackfile import StackFile, load_stack, read_stack_file

__all__ = ["ConfigError", "StackConfig", "StackFile", "load_from_pulumi", "load_stack", "read_stack_file", "validate_config"]
