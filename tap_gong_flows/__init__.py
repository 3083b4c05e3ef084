"""Singer tap for Gong Engage flows."""
