"""audioprobe.figures"""
