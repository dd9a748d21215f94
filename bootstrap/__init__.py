"""The bootstrap stack (state backend and secrets provider); see state_backend."""
