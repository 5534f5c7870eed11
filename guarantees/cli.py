"""`python -m guarantees verify FILE.pdf`: the verdict on a letter, a guarantee number or a QR payload.

Exit codes: 0 genuine and in force; 10 tampered; 11 unknown; 12 not signed by the issuing guarantor;
13 cancelled; 14 released; 15 claimed; 16 expired; 2 bad input (not a PDF, too large, unreadable,
not a guarantee number); 3 the chain or the deployment manifest cannot be reached.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path

from contracts.client import Chain, Deployment
from contracts.errors import ContractRevert, TransactionFailed
from guarantees.errors import LetterError
from guarantees.letter import MAX_LETTER_BYTES
from guarantees.records import VerificationResult
from guarantees.verify import BadNumber, exit_code, verify_letter, verify_number

EXIT_BAD_INPUT = 2
EXIT_NO_CHAIN = 3


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m guarantees", description=__doc__.split("\n\n")[0])
    commands = parser.add_subparsers(dest="command", required=True)
    check = commands.add_parser(
        "verify",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
        help="verify a letter (PDF), a guarantee number (--number) or a QR payload (--qr)",
    )
    check.add_argument("file", nargs="?", help="the letter, a PDF")
    check.add_argument("--number", help="a guarantee number instead of a file")
    check.add_argument("--qr", help="the text of the letter's QR code instead of a file")
    check.add_argument("--rpc-url", default=os.environ.get("JIANZHENG_RPC_URL", "http://127.0.0.1:8545"))
    check.add_argument("--deployment", default="build/deployment.json", help="the deployment manifest")
    check.add_argument("--json", action="store_true", help="print the result as one JSON object")
    check.add_argument("--no-proof", action="store_true", help="skip the jz_getProof bundle")
    return parser


def _print(result: VerificationResult, as_json: bool) -> None:
    if as_json:
        print(json.dumps(result.to_json(), ensure_ascii=False, sort_keys=True))
        return
    print(f"{result.verdict.value}: {result.text}")
    print(f"  保函编号 {result.number or '-'}; {result.reason}")
    if result.evidence is not None:
        evidence = result.evidence
        proof = "; jz_getProof bundle included" if evidence.proof else ""
        print(f"  存证: tx {evidence.tx_hash}, block {evidence.block_number} ({evidence.block_hash}){proof}")


def _fail(message: str, code: int, as_json: bool) -> int:
    if as_json:
        print(json.dumps({"error": message, "exit_code": code}, ensure_ascii=False))
    else:
        print(f"error: {message}", file=sys.stderr)
    return code


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    sources = [value for value in (args.file, args.number, args.qr) if value]
    if len(sources) != 1:
        return _fail("give exactly one of FILE, --number or --qr", EXIT_BAD_INPUT, args.json)
    pdf = b""
    if args.file:
        path = Path(args.file)
        try:
            size = path.stat().st_size
            if size > MAX_LETTER_BYTES:
                return _fail(f"{path}: {size} bytes, too large for a guarantee letter", EXIT_BAD_INPUT, args.json)
            pdf = path.read_bytes()
        except OSError as error:
            return _fail(f"{path}: {error.strerror or error}", EXIT_BAD_INPUT, args.json)
    try:
        manifest = json.loads(Path(args.deployment).read_text(encoding="utf-8"))
        chain = Chain(args.rpc_url, timeout=10)
        deployment = Deployment.from_manifest(chain, manifest)
    except (OSError, ValueError, KeyError) as error:
        return _fail(f"deployment manifest {args.deployment}: {error}", EXIT_NO_CHAIN, args.json)
    try:
        if args.file:
            result = verify_letter(deployment, pdf, with_proof=not args.no_proof)
        else:
            result = verify_number(deployment, args.number or args.qr, with_proof=not args.no_proof)
    except (LetterError, BadNumber) as error:
        return _fail(str(error), EXIT_BAD_INPUT, args.json)
    except (OSError, TransactionFailed, ContractRevert, ConnectionError) as error:
        return _fail(f"chain at {args.rpc_url}: {error}", EXIT_NO_CHAIN, args.json)
    _print(result, args.json)
    return exit_code(result.verdict)
