"""audioprobe.probes"""
