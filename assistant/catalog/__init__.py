"""Every model the assistant knows (catalog.json) and which adapter class serves each backend."""
