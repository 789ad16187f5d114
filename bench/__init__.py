"""The benchmarks behind every performance claim: python -m assistant bench NAME."""
