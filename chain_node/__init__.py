"""chain_node: the consortium chain (QBFT validators, revm execution, Ethereum JSON-RPC, proofs).

`python -m chain_node` starts a local network of validator processes; `python -m chain_node
validator --config FILE` runs one validator; `python -m chain_node verify` checks a proof bundle.
"""
