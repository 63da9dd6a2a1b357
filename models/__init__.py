"""audioprobe.models: the probed networks (BYOL-A and others), their layers, and the extraction of activations."""
