"""Electronic bid guarantees (电子投标保函): lifecycle rules, signed PDF letters, verification, supervision.

A library the platform calls; its entry points by layer:

- `guarantees.lifecycle`: application checks, underwriting, premium, issue (letter + signature +
  anchoring), cancel, release, expiry, claims and payouts, claimability from on-chain facts, 密文保函.
- `guarantees.letter`: the PDF letter, its hash and the guarantor's signature block.
- `guarantees.verify`: one verdict for a PDF, a QR payload or a guarantee number, with evidence.
- `guarantees.integration`: signed JSON messages between the platform and guarantors' systems.
- `guarantees.supervision`: supervision alerts and the cash deposits freed by guarantees.
- `guarantees.web`: Flask blueprints (public verification page and API, guarantor API).
"""
