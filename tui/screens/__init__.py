"""The console's screens, switched with 1-5."""
