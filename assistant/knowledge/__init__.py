"""The user's documents: ingest, the vector store, retrieval, and the grounding
of small models' answers."""
