"""Bootstrap program: the state backend and secrets provider of the azml stacks.
All logic is in state_backend (importable, tested under mocks)."""

import pulumi

import state_backend

try:
    config = state_backend.BootstrapConfig.from_pulumi_config(pulumi.Config())
except state_backend.BootstrapConfigError as error:
    # RunError ends the program with this message and no traceback.
    raise pulumi.RunError("invalid bootstrap config:\n" + "\n".join(error.problems)) from None
state_backend.build(config)
