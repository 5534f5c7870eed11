"""`python -m opening ...`: what a witness, a bidder's script or an operator runs.

Secrets never go on the command line: chain keys come from an environment variable named with
--key-env, passphrases from JZ_PASSPHRASE (or the variable named with --passphrase-env). Every bad
input ends with one line on stderr and exit status 2; a refused early request with status 3.

    transport-key  a witness's DKG transport key pair (secret saved under a passphrase); alias keygen
    deal           a witness deals its polynomial for a section's DKG
    complain       a witness checks its shares in all deals; writes its complaints
    finish-dkg     anyone: QUAL and the opening key; a witness also saves its secret share
    anchor-key     the agency anchors the opening key (TenderRegistry.setOpeningKey)
    seal           the Python bidder client: seal a bid document and its announced fields
    shares         a witness releases (and optionally anchors) its decryption shares, after the deadline only;
                   with --platform it downloads the envelopes from the platform and uploads the batch there
    open           open the section: record file, optionally outcomes and record hash anchored
    verify-opening anyone: redo the opening from public data, compare with the record and the chain;
                   a witness then attests it (--attest)
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from contracts.client import Chain, Signer, TenderRegistryClient
from contracts.errors import ContractRevert, TransactionFailed
from opening import dkg
from opening.chainio import anchor_opening, read_public_data
from opening.ec import InvalidPoint
from opening.envelope import BidOpeningFailed, InvalidBid, InvalidOpeningKey, commitment_of, seal_bid
from opening.opener import OpeningMismatch, open_section, verify_opening
from opening.shares import InvalidShareBatch, ShareBatch
from opening.witness import (
    AccessRequest,
    EarlyAccessRefused,
    WitnessShare,
    WrongWitnessKey,
    load_secret,
    load_share,
    publish_shares,
    release_shares,
    save_secret,
    save_share,
)


class UsageError(Exception):
    """Bad input on the command line or in a given file."""


def _hex(value: str, size: int | None = None, what: str = "value") -> bytes:
    try:
        data = bytes.fromhex(value[2:] if value.startswith("0x") else value)
    except ValueError:
        raise UsageError(f"{what} is not hex: {value!r}") from None
    if size is not None and len(data) != size:
        raise UsageError(f"{what} must be {size} bytes, got {len(data)}")
    return data


def _json(path: Path) -> Any:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as error:
        raise UsageError(f"{path}: {error}") from None


def _write_json(path: Path, value: Any) -> None:
    path.write_text(json.dumps(value, indent=1, ensure_ascii=False), encoding="utf-8")


def _passphrase(args: argparse.Namespace) -> str:
    value = os.environ.get(args.passphrase_env)
    if not value:
        raise UsageError(f"set the passphrase in the environment variable {args.passphrase_env}")
    return value


def _signer(args: argparse.Namespace) -> Signer:
    value = os.environ.get(args.key_env or "")
    if not value:
        raise UsageError("name the environment variable holding the chain key with --key-env")
    try:
        return Signer.from_key(value)
    except ValueError as error:
        raise UsageError(f"the key in {args.key_env} is not a private key: {error}") from None


def _registry(args: argparse.Namespace) -> TenderRegistryClient:
    if not args.rpc_url or not args.registry:
        raise UsageError("--rpc-url and --registry (the TenderRegistry address) are required")
    return TenderRegistryClient(Chain(args.rpc_url), args.registry)


def _envelopes(folder: Path) -> dict[str, Path]:
    """Envelopes named `<bidder address>.jzb` in a folder."""
    if not folder.is_dir():
        raise UsageError(f"{folder} is not a folder of envelopes")
    return {path.stem: path for path in sorted(folder.glob("0x*.jzb"))}


def _batches(paths: Sequence[Path]) -> list[ShareBatch]:
    return [ShareBatch.from_json(_json(path)) for path in paths]


# ------------------------------------------------------------------------------------------ DKG


def _params(path: Path) -> dkg.DkgParams:
    raw = _json(path)
    try:
        params = dkg.DkgParams(
            _hex(raw["section_id"], 32, "section_id"),
            int(raw["threshold"]),
            tuple(_hex(k, 33, "transport key") for k in raw["transport_keys"]),
        )
        params.check()
    except (KeyError, TypeError, ValueError, InvalidPoint) as error:
        raise UsageError(f"{path}: not DKG parameters: {error!r}") from None
    return params


def _deals(paths: Sequence[Path]) -> list[dkg.Deal]:
    try:
        return [dkg.deal_from_json(_json(path)) for path in paths]
    except (KeyError, TypeError, ValueError) as error:
        raise UsageError(f"not a deal: {error!r}") from None


def _complaints(paths: Sequence[Path]) -> list[dkg.Complaint]:
    try:
        return [dkg.complaint_from_json(c) for path in paths for c in _json(path)]
    except (KeyError, TypeError, ValueError) as error:
        raise UsageError(f"not a complaint list: {error!r}") from None


def _transport_secret(args: argparse.Namespace) -> int:
    raw = load_secret(args.transport_key, _passphrase(args))
    if raw.get("kind") != "transport":
        raise UsageError(f"{args.transport_key} holds no transport key")
    return int(raw["secret"], 16)


def cmd_transport_key(args: argparse.Namespace) -> None:
    secret, public = dkg.new_transport_key()
    save_secret(args.out, _passphrase(args), {"kind": "transport", "secret": format(secret, "064x")})
    print(public.hex())


def cmd_deal(args: argparse.Namespace) -> None:
    params = _params(args.params)
    if not 1 <= args.index <= params.witnesses:
        raise UsageError(f"--index must be 1..{params.witnesses}")
    _write_json(args.out, dkg.deal_to_json(dkg.deal(params, args.index)))


def cmd_complain(args: argparse.Namespace) -> None:
    params = _params(args.params)
    complaints = dkg.receive(params, _deals(args.deals), args.index, _transport_secret(args))
    _write_json(args.out, [dkg.complaint_to_json(c) for c in complaints])
    print(f"{len(complaints)} complaint(s)")


def cmd_finish_dkg(args: argparse.Namespace) -> None:
    params = _params(args.params)
    deals = _deals(args.deals)
    outcome = dkg.finish(params, deals, _complaints(args.complaints or []))
    if args.index is not None:
        if args.share_out is None or args.transport_key is None:
            raise UsageError("--index needs --transport-key and --share-out")
        secret = dkg.secret_share(params, deals, outcome, args.index, _transport_secret(args))
        opening_key = outcome.opening_key.encode()
        save_share(args.share_out, _passphrase(args), WitnessShare(params.section_id, args.index, secret, opening_key))
    print(
        json.dumps(
            {
                "opening_key": outcome.opening_key.encode().hex(),
                "qualified": outcome.qualified,
                "disqualified": outcome.disqualified,
                "rejected_complaints": outcome.rejected_complaints,
            }
        )
    )


def cmd_anchor_key(args: argparse.Namespace) -> None:
    registry = _registry(args)
    result = registry.set_opening_key(_signer(args), _hex(args.section, 32, "--section"), _hex(args.opening_key))
    print(result.tx_hash)


# ------------------------------------------------------------------------------------------ bids and opening


def cmd_seal(args: argparse.Namespace) -> None:
    try:
        announced = json.loads(args.announced)
        document = args.document.read_bytes()
    except (ValueError, OSError) as error:
        raise UsageError(f"announced fields or document: {error}") from None
    bidder_key = _hex(args.bidder_key, 65, "--bidder-key") if args.bidder_key else None
    envelope = seal_bid(
        _hex(args.section, 32, "--section"),
        _hex(args.opening_key),
        args.bidder,
        announced,
        document,
        args.document.name,
        bidder_key=bidder_key,
    )
    args.out.write_bytes(envelope)
    print("0x" + commitment_of(envelope).hex())


def _platform_call(args: argparse.Namespace, path: str, body: bytes | None = None) -> bytes:
    """One call to the platform's API with the witness's API token (from --token-env); its refusal, in
    the platform's words, is a usage error."""
    token = os.environ.get(args.token_env)
    if not token:
        raise UsageError(f"set the platform's API token in the environment variable {args.token_env}")
    headers = {"Authorization": f"Bearer {token}"}
    if body is not None:
        headers["Content-Type"] = "application/json"
    request = urllib.request.Request(args.platform.rstrip("/") + path, data=body, headers=headers,
                                     method="POST" if body is not None else "GET")
    try:
        with urllib.request.urlopen(request, timeout=120) as response:
            answer: bytes = response.read()
            return answer
    except urllib.error.HTTPError as error:
        detail = error.read().decode("utf-8", "replace")[:500]
        raise UsageError(f"the platform refused {path}: HTTP {error.code} {detail}") from None


def fetch_envelopes(args: argparse.Namespace, folder: Path) -> None:
    """Download the section's committed envelopes from the platform as `<bidder>.jzb` files (the
    platform hands them out from the opening time on; before it the request is refused and anchored)."""
    folder.mkdir(parents=True, exist_ok=True)
    listing = json.loads(_platform_call(args, f"/api/v1/sections/{args.platform_section}/envelopes"))
    for entry in listing["envelopes"]:
        (folder / f"{entry['bidder']}.jzb").write_bytes(_platform_call(args, entry["url"]))


def cmd_shares(args: argparse.Namespace) -> None:
    registry = _registry(args)
    signer = _signer(args)
    share = load_share(args.share_file, _passphrase(args))
    request = AccessRequest(share.section_id, args.requester or signer.address, "decryption shares", int(time.time()))
    if args.platform:
        if args.publish:
            raise UsageError("with --platform the platform anchors the batch for the witness: leave out --publish")
        if args.platform_section is None:
            raise UsageError("--platform needs --platform-section (the platform's section number)")
        fetch_envelopes(args, args.envelopes)
    batch = release_shares(registry, signer, share, _envelopes(args.envelopes), request, workers=args.workers)
    args.out.write_bytes(batch.canonical())
    if args.publish:
        publish_shares(registry, signer, batch)
    if args.platform:
        # The platform checks the batch and anchors its hash for this witness.
        _platform_call(args, f"/api/v1/sections/{args.platform_section}/share-batches", batch.canonical())
    print("0x" + batch.digest.hex())


def cmd_open(args: argparse.Namespace) -> None:
    registry = _registry(args)
    section_id = _hex(args.section, 32, "--section")
    data = read_public_data(registry, section_id)
    result = open_section(
        data,
        _batches(args.shares),
        _envelopes(args.envelopes),
        registry.chain.now(),
        workers=args.workers,
        output_dir=args.documents,
    )
    args.out.write_bytes(result.record_bytes)
    for reason in result.ignored_batches:
        print(f"ignored: {reason}", file=sys.stderr)
    if args.anchor:
        anchor_opening(registry, _signer(args), section_id, result)
    print(json.dumps({"record_hash": "0x" + result.record_hash.hex(), **result.record["counts"]}))


def cmd_verify_opening(args: argparse.Namespace) -> None:
    registry = _registry(args)
    section_id = _hex(args.section, 32, "--section")
    data = read_public_data(registry, section_id)
    anchored = registry.section(section_id).opening_record_hash
    try:
        claimed = args.record.read_bytes()
    except OSError as error:
        raise UsageError(f"{args.record}: {error}") from None
    result = verify_opening(
        data,
        _batches(args.shares),
        _envelopes(args.envelopes),
        claimed,
        anchored if any(anchored) else None,
        workers=args.workers,
    )
    attested = False
    if args.attest:
        if not any(anchored):
            raise UsageError("the opening is not closed on chain yet: nothing to attest")
        registry.attest_opening(_signer(args), section_id, result.record_hash)
        attested = True
    summary = {"verified": True, "record_hash": "0x" + result.record_hash.hex(), "anchored": any(anchored)}
    print(json.dumps({**summary, "attested": attested}))


# ------------------------------------------------------------------------------------------ parser


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m opening", description=__doc__.split("\n\n")[0])
    parser.add_argument("--passphrase-env", default="JZ_PASSPHRASE")
    parser.add_argument("--key-env", help="environment variable holding this party's chain key")
    parser.add_argument("--rpc-url")
    parser.add_argument("--registry", help="TenderRegistry address")
    parser.add_argument("--workers", type=int, default=os.cpu_count() or 1)
    sub = parser.add_subparsers(dest="command", required=True)

    p = sub.add_parser("transport-key", aliases=["keygen"], help="new DKG transport key (prints the public key)")
    p.add_argument("--out", type=Path, required=True)
    p.set_defaults(run=cmd_transport_key)

    p = sub.add_parser("deal", help="deal this witness's polynomial")
    p.add_argument("--params", type=Path, required=True, help="JSON: section_id, threshold, transport_keys")
    p.add_argument("--index", type=int, required=True)
    p.add_argument("--out", type=Path, required=True)
    p.set_defaults(run=cmd_deal)

    p = sub.add_parser("complain", help="check this witness's shares in every deal")
    p.add_argument("--params", type=Path, required=True)
    p.add_argument("--index", type=int, required=True)
    p.add_argument("--transport-key", type=Path, required=True)
    p.add_argument("--deals", type=Path, nargs="+", required=True)
    p.add_argument("--out", type=Path, required=True)
    p.set_defaults(run=cmd_complain)

    p = sub.add_parser("finish-dkg", help="QUAL and the opening key (and this witness's share)")
    p.add_argument("--params", type=Path, required=True)
    p.add_argument("--deals", type=Path, nargs="+", required=True)
    p.add_argument("--complaints", type=Path, nargs="*")
    p.add_argument("--index", type=int)
    p.add_argument("--transport-key", type=Path)
    p.add_argument("--share-out", type=Path)
    p.set_defaults(run=cmd_finish_dkg)

    p = sub.add_parser("anchor-key", help="anchor the opening key (agency)")
    p.add_argument("--section", required=True)
    p.add_argument("--opening-key", required=True)
    p.set_defaults(run=cmd_anchor_key)

    p = sub.add_parser("seal", help="seal a bid (prints its commitment)")
    p.add_argument("--section", required=True)
    p.add_argument("--opening-key", required=True, help="hex, as anchored on chain")
    p.add_argument("--bidder", required=True)
    p.add_argument("--announced", required=True, help='JSON, e.g. {"price_fen": 123400, "duration_days": 90}')
    p.add_argument("--document", type=Path, required=True)
    p.add_argument("--bidder-key", help="the bidder's own P-256 public key (65 bytes hex) to decrypt later")
    p.add_argument("--out", type=Path, required=True)
    p.set_defaults(run=cmd_seal)

    p = sub.add_parser("shares", help="release this witness's decryption shares (after the deadline only)")
    p.add_argument("--share-file", type=Path, required=True)
    p.add_argument("--envelopes", type=Path, required=True)
    p.add_argument("--requester", help="who asked (recorded in the evidence of an early request)")
    p.add_argument("--out", type=Path, required=True)
    p.add_argument("--publish", action="store_true", help="also anchor the batch's hash on chain")
    p.add_argument("--platform", help="the platform's URL: fetch the envelopes from it, upload the batch to it")
    p.add_argument("--platform-section", type=int, help="the section's number on the platform")
    p.add_argument("--token-env", default="JZ_PLATFORM_TOKEN", help="environment variable holding the API token")
    p.set_defaults(run=cmd_shares)

    for name, run in (("open", cmd_open), ("verify-opening", cmd_verify_opening)):
        p = sub.add_parser(name, help="open the section" if name == "open" else "redo the opening and compare")
        p.add_argument("--section", required=True)
        p.add_argument("--envelopes", type=Path, required=True)
        p.add_argument("--shares", type=Path, nargs="+", required=True)
        if name == "open":
            p.add_argument("--out", type=Path, required=True)
            p.add_argument("--documents", type=Path, help="folder for the opened bid documents")
            p.add_argument("--anchor", action="store_true", help="record outcomes and close the opening (agency)")
        else:
            p.add_argument("--record", type=Path, required=True)
            p.add_argument("--attest", action="store_true", help="then attest the anchored record (witness)")
        p.set_defaults(run=run)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    try:
        args.run(args)
    except EarlyAccessRefused as error:
        print(f"refused: {error}", file=sys.stderr)
        return 3
    except OSError as error:  # a file that cannot be read or written, a node that cannot be reached
        print(f"error: {error}", file=sys.stderr)
        return 2
    except (
        UsageError,
        InvalidBid,
        InvalidOpeningKey,
        InvalidShareBatch,
        InvalidPoint,
        WrongWitnessKey,
        dkg.DkgFailed,
        dkg.InvalidDeal,
        OpeningMismatch,
        BidOpeningFailed,
        ContractRevert,
        TransactionFailed,
    ) as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    return 0
