"""The Seawall console (Textual)."""
