"""Serving: endpoint routing (traffic, mirror, batch defaults) and its rules."""
