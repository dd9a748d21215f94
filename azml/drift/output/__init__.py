"""What a drift run produces: its reports (text, Markdown, JSON, HTML with plots) and its MLflow run."""
