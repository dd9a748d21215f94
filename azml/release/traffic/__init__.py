"""The traffic wing: the ladder of splits, ``advance`` applying a verdict to
the stack file, the stack file edit itself, the status view and the bandit."""
