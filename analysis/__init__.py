"""audioprobe.analysis"""
