"""Threshold opening of sealed bids (issue #4): no one can open a bid before the deadline, no one can block it.

Layers, each with one entry point:
- `envelope.seal_bid`: the Python bidder client (the browser uses `static/sealing.js`, same format);
- `dkg`: the witnesses' key generation without a dealer (`deal`, `receive`, `finish`, `secret_share`);
- `witness.release_shares`: a witness's decryption shares, refused (and anchored) before the deadline;
- `opener.open_section` / `opener.verify_opening`: verify, combine, decrypt, classify, build the record;
- `chainio`: read the public data from the chain, anchor outcomes and the record hash.
See opening/README.md for the formats, the protocol and the threat model.
"""
