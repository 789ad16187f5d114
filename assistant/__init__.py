"""The multimodal router assistant: everything that is not one model family.

Importing this package does no work: no torch, no disk, no network.
"""
