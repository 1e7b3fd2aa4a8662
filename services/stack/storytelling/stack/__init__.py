"""Launchers for the engines the services talk to (vLLM, Triton), shared by tests, the local stack and
benchmarks."""
