"""Benchmarks and reference implementations that measure and check the engine's supernets."""
