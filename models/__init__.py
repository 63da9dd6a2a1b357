"""audioprobe.models"""
