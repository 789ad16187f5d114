"""The flow of one request: check, route, lease a model, run, price, record; chains and outcomes."""
