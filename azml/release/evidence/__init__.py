"""The evidence wing: what a verdict rests on — observations and their
sources, the gate and the verdict, the load test, data validation, feature
attribution, the time limit, the error budget, and the verdict store."""
