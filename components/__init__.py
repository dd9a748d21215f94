"""The Pulumi components of the platform, one module per concern."""
