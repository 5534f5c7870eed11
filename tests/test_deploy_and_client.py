"""Deployment from a consortium config, the manifest, and the client's error mapping and finality."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from hexbytes import HexBytes
from web3.exceptions import Web3RPCError

from contracts import errors
from contracts.client import Chain, Deployment, Signer, _read_again_if_head_moved
from contracts.deploy import ConfigError, ConsortiumConfig, load_config
from contracts.records import BidCover, Role, org_id
from tests.backends import Backend
from tests.helpers import Platform, commit_bid, fresh_id, new_section, random_hash


def test_manifest_describes_the_deployment(platform: Platform, backend: Backend) -> None:
    manifest = platform.manifest
    assert manifest["chainId"] == backend.chain.chain_id
    assert set(manifest["contracts"]) == {"Consortium", "TenderRegistry", "GuaranteeRegistry"}
    for name, info in manifest["contracts"].items():
        assert info["artifactHash"] == backend.chain.artifacts[name].artifact_hash
        code = "0x" + bytes(backend.chain.w3.eth.get_code(info["address"])).hex()
        expected = backend.chain.artifacts[name].deployed_bytecode
        # Immutables (the wiring addresses) are patched in at deployment; Consortium has none.
        assert code == expected if name == "Consortium" else len(code) == len(expected)
    assert manifest["compilerVersion"].startswith("0.8.30")


def test_members_and_roles_match_the_config(platform: Platform, dev_config: ConsortiumConfig) -> None:
    consortium = platform.consortium
    assert consortium.threshold() == dev_config.admin_threshold
    assert consortium.member_count() == len(dev_config.members)
    for member in dev_config.members:
        on_chain = consortium.member_of(member.signer.address)
        assert on_chain.roles == member.roles
        assert on_chain.org_id == org_id(member.identifier)


def test_registries_are_wired_to_each_other(platform: Platform) -> None:
    tenders, guarantees = platform.tenders, platform.guarantees
    assert tenders.guarantee_registry_address() == guarantees.address
    assert guarantees.tender_registry_address() == tenders.address
    assert tenders.consortium_address() == guarantees.consortium_address() == platform.consortium.address


def test_miswired_tender_registry_cannot_be_deployed(platform: Platform, backend: Backend) -> None:
    deployer = platform.config.deployer
    with pytest.raises(errors.TenderRegistryMiswired) as caught:
        backend.chain.deploy(deployer, "TenderRegistry", platform.consortium.address, platform.guarantees.address)
    assert caught.value.values["pointsTo"] == platform.tenders.address


def test_deployment_from_manifest_reads_the_same_contracts(platform: Platform, backend: Backend) -> None:
    again = Deployment.from_manifest(Chain(backend.chain.rpc_url), platform.manifest)
    assert again.tenders.address == platform.tenders.address
    assert again.consortium.threshold() == platform.consortium.threshold()


@pytest.mark.parametrize(
    ("mutate", "message"),
    [
        (lambda c: c.update(admin_threshold=1), "admin_threshold"),
        (lambda c: c.update(admin_threshold=9), "admin_threshold"),
        (lambda c: c["members"][0].update(roles=["pope"]), "unknown role"),
        (lambda c: c["members"][0].update(roles=[]), "no roles"),
        (lambda c: c["members"][1].update(key=c["members"][0]["key"]), "share a key"),
        (lambda c: c["members"][0].pop("key"), "needs `key` or `key_env`"),
        (
            lambda c: (
                c["members"][0].update(key_env="JIANZHENG_TEST_UNSET_KEY", key=None) or c["members"][0].pop("key")
            ),
            "JIANZHENG_TEST_UNSET_KEY",
        ),
        (lambda c: c.pop("members"), "members"),
    ],
)
def test_bad_configs_are_refused_with_the_reason(tmp_path: Path, mutate: object, message: str) -> None:
    source = Path(__file__).resolve().parent.parent / "scripts" / "consortium.dev.json"
    config = json.loads(source.read_text())
    assert callable(mutate)
    mutate(config)
    path = tmp_path / "config.json"
    path.write_text(json.dumps(config))
    with pytest.raises(ConfigError, match=message):
        load_config(path)


def test_unreadable_config_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "config.json"
    path.write_text("{not json")
    with pytest.raises(ConfigError):
        load_config(path)
    with pytest.raises(ConfigError):
        load_config(tmp_path / "missing.json")


def test_role_names_parse_and_reject_unknown() -> None:
    assert Role.parse(["admin", "Witness"]) == Role.ADMIN | Role.WITNESS
    with pytest.raises(ValueError, match="unknown role"):
        Role.parse(["king"])


def test_revert_raises_the_named_exception_with_arguments(platform: Platform, outsider: Signer) -> None:
    with pytest.raises(errors.TenderRegistryUnauthorized) as caught:
        platform.tenders.create_tender(outsider, fresh_id("t"), platform.tenderer.address, random_hash())
    assert caught.value.values == {"account": outsider.address, "role": int(Role.AGENCY)}
    assert isinstance(caught.value, errors.ContractRevert)
    assert "TenderRegistryUnauthorized(account=" in str(caught.value)


def test_views_raise_named_errors_too(platform: Platform) -> None:
    with pytest.raises(errors.TenderRegistryUnknownObjection):
        platform.tenders.objection(fresh_id("section"), 1)


def test_unknown_error_names_are_not_invented() -> None:
    with pytest.raises(AttributeError):
        errors.TenderRegistryNoSuchThing  # noqa: B018


def test_unknown_revert_data_is_kept() -> None:
    unknown = errors.decode_revert(bytes.fromhex("deadbeef") + b"\x00" * 32)
    assert isinstance(unknown, errors.UnknownRevert)
    assert isinstance(errors.decode_revert(b""), errors.UnknownRevert)


def test_transactions_return_final_results_with_events(platform: Platform) -> None:
    section = new_section(platform)
    result = commit_bid(platform,
        platform.bidders[0], section.section_id, random_hash(), BidCover.deposit(fresh_id("deposit"))
    )
    chain = platform.backend.chain
    receipt = chain.w3.eth.get_transaction_receipt(HexBytes(result.tx_hash))
    assert receipt["status"] == 1 and receipt["blockNumber"] == result.block_number
    assert chain.block_number() >= result.block_number
    assert [e.name for e in result.events] == ["BidCommitted"]


def test_a_stale_nonce_is_read_again_once_and_the_send_goes_through(platform: Platform, backend: Backend) -> None:
    chain = platform.backend.chain
    signer = Signer.from_key(platform.bidders[1].account.key)
    section = new_section(platform)
    commit_bid(platform, signer, section.section_id, random_hash(), BidCover.deposit(fresh_id("deposit")))
    platform.tenders.withdraw_bid(signer, section.section_id)
    # Stale on purpose, as when another program (the platform, a script) sent from the same key.
    signer._next_nonce[chain.identity] = 0
    commit_bid(platform, signer, section.section_id, random_hash(), BidCover.deposit(fresh_id("deposit")))
    assert signer._next_nonce[chain.identity] == chain.w3.eth.get_transaction_count(signer.account.address)
    platform.bidders[1]._next_nonce.clear()  # the shared signer re-reads its nonce too


def test_a_read_is_asked_again_when_the_nodes_pruned_head_moved_under_it() -> None:
    """anvil (--prune-history) refuses a read of the block that has just stopped being the head, as a read
    racing another client's transaction meets; any other refusal, or a third one, reaches the caller."""
    moved = Web3RPCError("{'code': -32602, 'message': 'BlockOutOfRangeError: block height is 196 but requested "
                         "was 195'}")
    answers: list[Exception | bytes] = []

    def read() -> bytes:
        answer = answers.pop(0)
        if isinstance(answer, Exception):
            raise answer
        return answer

    answers[:] = [moved, moved, b"state"]
    assert _read_again_if_head_moved(read) == b"state"
    answers[:] = [moved, moved, moved, b"state"]
    with pytest.raises(Web3RPCError, match="BlockOutOfRange"):
        _read_again_if_head_moved(read)
    answers[:] = [Web3RPCError("{'code': -32000, 'message': 'header not found'}"), b"state"]
    with pytest.raises(Web3RPCError, match="header not found"):
        _read_again_if_head_moved(read)


def test_any_other_refusal_reaches_the_caller(platform: Platform) -> None:
    penniless = Signer.from_key("0x" + "5e" * 32)  # no funds here, and not permitted on chain_node
    with pytest.raises(errors.TransactionFailed, match="refused"):
        platform.backend.chain.send(penniless, penniless.address, b"", gas=21_000)


def test_a_transaction_that_reverts_once_mined_raises_its_named_error(platform: Platform, outsider: Signer) -> None:
    tenders = platform.tenders
    data = HexBytes(
        tenders._contract.encode_abi("createTender", args=[fresh_id("t"), platform.tenderer.address, random_hash()])
    )
    with pytest.raises(errors.TenderRegistryUnauthorized) as caught:
        platform.backend.chain.send(outsider, tenders.address, bytes(data), gas=200_000)  # no estimate: it is mined
    assert caught.value.values["account"] == outsider.address


def test_calldata_is_what_web3_encodes(platform: Platform) -> None:
    """The sender's own encoder (selector and eth_abi, cached) gives web3's bytes, tuples and arrays too."""
    chain, tenders = platform.backend.chain, platform.tenders
    terms = (1_900_000_000, 90 * 86400, 10_000, 2, 1, [platform.tenderer.address, tenders.address], random_hash())
    for function, args in (
        ("createTender", [fresh_id("t"), platform.tenderer.address, random_hash()]),
        ("addSection", [fresh_id("t"), fresh_id("s"), terms]),
        ("commitBid", [fresh_id("s"), random_hash(), random_hash()]),
        ("withdrawBid", [fresh_id("s")]),
    ):
        assert chain.calldata("TenderRegistry", function, args) == bytes(
            HexBytes(tenders._contract.encode_abi(function, args=args)))
    with pytest.raises(ValueError, match="0 functions named noSuchFunction"):
        chain.calldata("TenderRegistry", "noSuchFunction", [])


def test_estimates_of_many_calls_name_each_refusal(platform: Platform, outsider: Signer) -> None:
    tenders = platform.tenders
    chain = platform.backend.chain
    allowed = {"from": platform.tenderer.address, "to": outsider.address, "value": 0, "data": b""}
    refused = {"from": outsider.address, "to": tenders.address, "value": 0,
               "data": chain.calldata("TenderRegistry", "createTender",
                                      [fresh_id("t"), platform.tenderer.address, random_hash()])}
    results = chain.estimate_many([allowed, refused])
    assert results[0] == 21_000
    assert isinstance(results[1], errors.TenderRegistryUnauthorized)
    assert results[1].values["account"] == outsider.address


def test_receipts_of_many_wait_for_the_confirmations_asked(platform: Platform, backend: Backend) -> None:
    if backend.name != "anvil":
        pytest.skip("anvil mines a block only when a transaction comes")
    chain = platform.backend.chain
    patient = Chain(chain.rpc_url, timeout=1.0, confirmations=1)
    sent = chain.send(platform.tenderer, platform.tenderer.address, b"", value=1, gas=21_000)
    with pytest.raises(errors.TransactionFailed, match="lack 1 confirmations"):
        patient.final_receipts([sent.tx_hash])
    chain.send(platform.tenderer, platform.tenderer.address, b"", value=1, gas=21_000)  # the next block
    assert int(patient.final_receipts([sent.tx_hash])[sent.tx_hash]["blockNumber"], 16) == sent.block_number
