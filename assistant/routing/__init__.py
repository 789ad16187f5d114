"""Which model family and model serve a request, and why (router, intent classifier, file kinds)."""
