"""Conversations kept per user, and prompt templates."""
