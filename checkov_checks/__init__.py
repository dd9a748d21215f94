"""azml's custom checkov checks for ARM templates (loaded with --external-checks-dir).

checkov imports every module of this directory by file name, with checkov's
own environment (.venv-checkov): nothing here may import azml.
"""
