"""The offline plan: the Pulumi program under mocks, its resources, policy verdicts and ARM export."""
