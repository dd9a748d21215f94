"""Config of the release controller and what feeds it: promotion gate and
traffic ladder, error budget, bandits, attribution, load test, data
validation and retraining."""
