"""``audioprobe`` commands of audioprobe.features."""
from __future__ import annotations

import argparse


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add this stage's commands."""
