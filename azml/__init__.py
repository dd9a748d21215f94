"""azml: infrastructure as code for a secure Azure Machine Learning platform."""
