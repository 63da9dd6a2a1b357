"""audioprobe.features"""
