"""Offline evaluation of the CrossGuard policy pack over a recorded plan."""
