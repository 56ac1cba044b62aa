"""Event cameras: driver packets decoded to arrays, event representations for the models, synthetic events."""
