"""contingency package."""
