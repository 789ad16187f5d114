"""Training code that is not on the product's request path.

``data`` reads and checks fine-tuning examples; ``lora`` teaches a small
chat model from them on this machine. The product calls these through
assistant/tuning.py, which registers and accounts for the result.
"""
