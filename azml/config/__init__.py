"""Stack configuration: schema, loading and validation.

The floor (schema, loader, stack file, setting, checks, secrets, reference)
holds what everything depends on; the models of the keys live in wings:
:mod:`.platform` (what the stack deploys) and :mod:`.releases` (the release
controller, data validation, retraining).
"""

from .loader import ConfigError, load_from_pulumi, validate_config
from .schema import StackConfig
from .stackfile import StackFile, load_stack, read_stack_file

__all__ = ["ConfigError", "StackConfig", "StackFile", "load_from_pulumi", "load_stack", "read_stack_file", "validate_config"]
