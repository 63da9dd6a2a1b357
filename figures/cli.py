"""``audioprobe`` commands of audioprobe.figures."""
from __future__ import annotations

import argparse


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add this stage's commands."""
