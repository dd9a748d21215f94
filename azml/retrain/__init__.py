"""``azml retrain check``: should the deployed model be retrained, and why.

``triggers`` decides from measured inputs (pure), ``sources`` reads those
inputs (drift report or MLflow drift run, observation runs, lineage record or
registered model version), ``submission`` hands a decision to the retraining
pipeline through the Event Grid handler's submitter, ``cli`` is the command.
"""
