"""Fast unit tests of the tap's pure modules: no network, no subprocess, no real sleeps."""
