"""The delta index: its static JSON format, the builder that fills it, and the path choice both ends share."""
