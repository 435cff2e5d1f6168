"""Whole networks: import (ONNX), and the passes over a network program (see DESIGN.md, "Whole networks")."""
