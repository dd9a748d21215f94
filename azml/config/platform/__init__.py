"""Config of what the stack deploys: workspace and network, regions, serving
endpoints, governance, Defender, alerts, model monitors and dashboards."""
