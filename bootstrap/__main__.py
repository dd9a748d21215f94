"""Bootstrap program: the state backend and secrets provider of the azml stacks.
All logic is in state_backend (importable, tested under mocks)."""

import pulumi

import state_backend

state_backend.build(state_backend.BootstrapConfig.from_pulumi_config(pulumi.Config()))
