"""The vectorized NumPy simulator of an ACG and the reference evaluation of tensor expressions."""
