"""Retraining trigger: Event Grid (via a Storage queue) → Azure ML pipeline job.

This folder is also the Azure Functions app root (``function_app.py``,
``host.json``, ``requirements.txt``); see README.md.
"""
