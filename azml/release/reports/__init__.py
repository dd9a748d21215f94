"""The reports wing: recording requests as observations, publishing them to
Azure Monitor, the scoreboard and the delivery KPIs."""
