"""Widgets of the console, one module per area."""
