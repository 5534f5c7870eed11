"""The on-chain core: Solidity sources, their compiler toolchain and the Python client."""
