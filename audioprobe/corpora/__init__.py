"""Corpora: the shipped default corpus recipe, pretraining pools and dataset adapters."""
