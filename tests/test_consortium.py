"""Consortium on a real node: founding, M-of-N proposals for every membership change, and the views.

Tests that change membership found their own Consortium from dev members' funded keys, so that the shared
deployment the other suites use stays as configured. Every revert is checked by error and arguments, and
the consortium must read the same after it as before.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from functools import partial
from typing import Any

import pytest

from contracts import errors
from contracts.client import ConsortiumClient, Signer, TxResult
from contracts.deploy import ConsortiumConfig
from contracts.records import Member, Proposal, ProposalKind, Role, org_id
from tests.backends import Backend
from tests.helpers import Platform, fresh_id

ZERO32 = b"\x00" * 32
ZERO_ADDRESS = "0x" + "00" * 20
ADMIN = int(Role.ADMIN)
ALL_ROLES = (1 << 7) - 1

# ---------------------------------------------------------------------------------------------- helpers


def org_of(account: str) -> bytes:
    return org_id(f"org of {account}")


@dataclass(frozen=True)
class Founded:
    """A freshly founded consortium and its founding admins."""

    client: ConsortiumClient
    admins: list[Signer]
    result: TxResult

    def proposal_count(self) -> int:
        contract = self.client.chain.contract("Consortium", self.client.address)
        return int(contract.functions.proposalCount().call())


@pytest.fixture
def keys(platform: Platform, dev_config: ConsortiumConfig) -> list[Signer]:
    """Funded keys (the dev members', funded by the shared deployment) to found fresh consortia with."""
    return [member.signer for member in dev_config.members]


@pytest.fixture
def found(backend: Backend, dev_config: ConsortiumConfig, keys: list[Signer]) -> Callable[..., Founded]:
    """Found a consortium of the first `admins` keys with `threshold`; roles default to admin only."""

    def make(admins: int, threshold: int, roles: Sequence[int] | None = None) -> Founded:
        signers = keys[:admins]
        address, result = backend.chain.deploy(
            dev_config.deployer,
            "Consortium",
            [s.address for s in signers],
            [org_of(s.address) for s in signers],
            list(roles) if roles is not None else [ADMIN] * admins,
            threshold,
        )
        return Founded(ConsortiumClient(backend.chain, address), signers, result)

    return make


def snapshot(client: ConsortiumClient, accounts: Sequence[str], proposals: Sequence[int], admins: Sequence[str]) -> Any:
    """Everything a revert must leave as it was: counts, the watched members and proposals with approvals."""
    contract = client.chain.contract("Consortium", client.address)
    return (
        client.threshold(),
        client.admin_count(),
        client.member_count(),
        int(contract.functions.proposalCount().call()),
        [client.member_of(account) for account in accounts],
        [client.proposal(p) for p in proposals],
        [[client.has_approved(p, admin) for admin in admins] for p in proposals],
    )


def assert_reverts(
    founded: Founded,
    error: type[errors.ContractRevert],
    action: Callable[[], object],
    *,
    accounts: Sequence[str] = (),
    proposals: Sequence[int] = (),
    **expected: Any,
) -> None:
    """`action` reverts with exactly `error(**expected)` and the consortium reads the same as before."""
    watched = [*accounts, *(a.address for a in founded.admins)]
    admins = [a.address for a in founded.admins]
    before = snapshot(founded.client, watched, proposals, admins)
    with pytest.raises(error) as caught:
        action()
    assert caught.value.error_name == error.error_name
    assert caught.value.values == expected
    assert snapshot(founded.client, watched, proposals, admins) == before


def event_names(result: TxResult) -> list[str]:
    return [event.name for event in result.events]


def only_event(result: TxResult, name: str, address: str) -> dict[str, Any]:
    found = result.events_named(name)
    assert len(found) == 1, event_names(result)
    assert found[0].address == address
    return found[0].args


def no_member(account: str) -> Member:
    return Member(account, ZERO32, Role(0))


# ---------------------------------------------------------------------------------------------- shared deployment


def test_shared_deployment_matches_config(platform: Platform, dev_config: ConsortiumConfig, outsider: Signer) -> None:
    consortium: ConsortiumClient = platform.consortium
    assert consortium.threshold() == dev_config.admin_threshold
    assert consortium.admin_count() == len(dev_config.with_role(Role.ADMIN))
    assert consortium.member_count() >= len(dev_config.members)
    for member in dev_config.members:
        address = member.signer.address
        assert consortium.member_of(address) == Member(address, org_id(member.identifier), member.roles)
        for role in Role:
            assert consortium.has_role(address, role) == bool(member.roles & role)
        assert consortium.has_role(address, member.roles)
        assert not consortium.has_role(address, Role(0))
    assert consortium.member_of(outsider.address) == no_member(outsider.address)
    assert not any(consortium.has_role(outsider.address, role) for role in Role)


# ---------------------------------------------------------------------------------------------- constructor


def test_constructor_founds_the_consortium(found: Callable[..., Founded]) -> None:
    roles = [ADMIN | int(Role.WITNESS), ADMIN, ALL_ROLES]
    founded = found(3, 2, roles)
    client = founded.client
    added = founded.result.events_named("MemberAdded")
    assert [event.args for event in added] == [
        {"account": admin.address, "orgId": org_of(admin.address), "roles": role}
        for admin, role in zip(founded.admins, roles, strict=True)
    ]
    assert all(event.address == client.address for event in added)
    assert only_event(founded.result, "ThresholdChanged", client.address) == {"previousThreshold": 0, "threshold": 2}

    assert client.threshold() == 2
    assert client.admin_count() == 3
    assert client.member_count() == 3
    assert founded.proposal_count() == 0
    for admin, role in zip(founded.admins, roles, strict=True):
        assert client.member_of(admin.address) == Member(admin.address, org_of(admin.address), Role(role))
        assert client.has_role(admin.address, Role.ADMIN)
        assert client.has_role(admin.address, Role(role))
    witness_admin, plain_admin, every_role = (a.address for a in founded.admins)
    assert client.has_role(witness_admin, Role.ADMIN | Role.WITNESS)
    assert not client.has_role(witness_admin, Role.ADMIN | Role.BIDDER)  # every bit is needed
    assert not client.has_role(plain_admin, Role.WITNESS)
    assert all(client.has_role(every_role, role) for role in Role)
    assert not client.has_role(plain_admin, Role(0))
    for proposal_id in (0, 1):
        with pytest.raises(errors.ConsortiumUnknownProposal) as caught:
            client.proposal(proposal_id)
        assert caught.value.values == {"proposalId": proposal_id}
        assert not client.has_approved(proposal_id, plain_admin)


def _constructor_args(case: str, admins: list[str]) -> tuple[list[str], list[bytes], list[int], int]:
    orgs = [org_of(a) for a in admins]
    roles = [ADMIN] * len(admins)
    if case == "org ids length":
        return admins, orgs[:2], roles, 2
    if case == "roles length":
        return admins, orgs, roles[:2], 2
    if case == "zero address":
        return [admins[0], ZERO_ADDRESS, admins[2]], orgs, roles, 2
    if case == "zero org id":
        return admins, [orgs[0], orgs[1], ZERO32], roles, 2
    if case == "duplicate admin":
        return [admins[0], admins[1], admins[0]], orgs, roles, 2
    if case == "no roles":
        return admins, orgs, [ADMIN, 0, ADMIN], 2
    if case == "unknown role bit":
        return admins, orgs, [ADMIN, ADMIN | 1 << 7, ADMIN], 2
    if case == "admin bit missing":
        return admins, orgs, [ADMIN, int(Role.TENDERER | Role.WITNESS), ADMIN], 2
    if case.startswith("threshold "):
        return admins, orgs, roles, int(case.split()[1])
    if case == "no admins":
        return [], [], [], 2
    raise AssertionError(case)


@pytest.mark.parametrize(
    ("case", "error", "values"),
    [
        ("org ids length", "ConsortiumLengthMismatch", {"admins": 3, "orgIds": 2, "roles": 3}),
        ("roles length", "ConsortiumLengthMismatch", {"admins": 3, "orgIds": 3, "roles": 2}),
        ("zero address", "ConsortiumZeroAddress", {}),
        ("zero org id", "ConsortiumZeroOrgId", {}),
        ("duplicate admin", "ConsortiumDuplicateAdmin", {"account": 0}),
        ("no roles", "ConsortiumInvalidRoles", {"roles": 0}),
        ("unknown role bit", "ConsortiumInvalidRoles", {"roles": ADMIN | 1 << 7}),
        ("admin bit missing", "ConsortiumInvalidRoles", {"roles": int(Role.TENDERER | Role.WITNESS)}),
        ("threshold 0", "ConsortiumInvalidThreshold", {"threshold": 0, "admins": 3}),
        ("threshold 1", "ConsortiumInvalidThreshold", {"threshold": 1, "admins": 3}),
        ("threshold 4", "ConsortiumInvalidThreshold", {"threshold": 4, "admins": 3}),
        ("no admins", "ConsortiumInvalidThreshold", {"threshold": 2, "admins": 0}),
    ],
)
def test_constructor_rejects(
    backend: Backend,
    dev_config: ConsortiumConfig,
    keys: list[Signer],
    case: str,
    error: str,
    values: dict[str, Any],
) -> None:
    admins = [k.address for k in keys[:3]]
    if "account" in values:
        values = {"account": admins[values["account"]]}
    with pytest.raises(getattr(errors, error)) as caught:
        backend.chain.deploy(dev_config.deployer, "Consortium", *_constructor_args(case, admins))
    assert caught.value.values == values


def test_constructor_accepts_threshold_equal_to_admins(found: Callable[..., Founded]) -> None:
    founded = found(2, 2)
    assert founded.client.threshold() == founded.client.admin_count() == 2


# ---------------------------------------------------------------------------------------------- add member


def test_add_member_takes_threshold_approvals(found: Callable[..., Founded], keys: list[Signer]) -> None:
    founded = found(4, 3)
    client, admins = founded.client, founded.admins
    newcomer = keys[10].address
    org, roles = org_of(newcomer), Role.BIDDER | Role.GUARANTOR

    proposed = client.propose_add_member(admins[0], newcomer, org, roles)
    proposal_id = int(proposed.return_value)
    assert proposal_id == 1
    assert event_names(proposed) == ["ProposalCreated", "ProposalApproved"]
    assert only_event(proposed, "ProposalCreated", client.address) == {
        "proposalId": 1,
        "kind": ProposalKind.ADD_MEMBER,
        "account": newcomer,
        "orgId": org,
        "value": int(roles),
        "proposer": admins[0].address,
    }
    assert only_event(proposed, "ProposalApproved", client.address) == {
        "proposalId": 1,
        "admin": admins[0].address,
        "approvals": 1,
    }
    assert client.proposal(1) == Proposal(1, ProposalKind.ADD_MEMBER, False, 1, newcomer, org, int(roles))
    assert client.has_approved(1, admins[0].address)
    assert not client.has_approved(1, admins[1].address)
    assert client.member_of(newcomer) == no_member(newcomer)
    assert not client.has_role(newcomer, Role.BIDDER)

    assert_reverts(
        founded,
        errors.ConsortiumAlreadyApproved,
        partial(client.approve, admins[0], 1),
        accounts=[newcomer],
        proposals=[1],
        proposalId=1,
        admin=admins[0].address,
    )
    second = client.approve(admins[1], 1)
    assert event_names(second) == ["ProposalApproved"]
    assert only_event(second, "ProposalApproved", client.address) == {
        "proposalId": 1,
        "admin": admins[1].address,
        "approvals": 2,
    }
    assert client.proposal(1).approvals == 2
    assert not client.proposal(1).executed
    assert client.member_of(newcomer) == no_member(newcomer)
    assert_reverts(
        founded,
        errors.ConsortiumAlreadyApproved,
        partial(client.approve, admins[1], 1),
        accounts=[newcomer],
        proposals=[1],
        proposalId=1,
        admin=admins[1].address,
    )

    third = client.approve(admins[2], 1)
    assert event_names(third) == ["ProposalApproved", "MemberAdded", "ProposalExecuted"]
    assert only_event(third, "ProposalApproved", client.address)["approvals"] == 3
    assert only_event(third, "MemberAdded", client.address) == {"account": newcomer, "orgId": org, "roles": int(roles)}
    assert only_event(third, "ProposalExecuted", client.address) == {"proposalId": 1}
    assert client.proposal(1) == Proposal(1, ProposalKind.ADD_MEMBER, True, 3, newcomer, org, int(roles))
    assert client.member_of(newcomer) == Member(newcomer, org, roles)
    assert client.has_role(newcomer, Role.BIDDER)
    assert client.has_role(newcomer, Role.GUARANTOR)
    assert not client.has_role(newcomer, Role.ADMIN)
    assert client.member_count() == 5
    assert client.admin_count() == 4
    assert founded.proposal_count() == 1

    # An executed proposal takes no more approvals, from a new or a previous approver.
    for admin in (admins[3], admins[0]):
        assert_reverts(
            founded,
            errors.ConsortiumProposalAlreadyExecuted,
            partial(client.approve, admin, 1),
            accounts=[newcomer],
            proposals=[1],
            proposalId=1,
        )


def test_added_admin_counts_and_may_act(found: Callable[..., Founded], keys: list[Signer]) -> None:
    founded = found(2, 2)
    client, admins = founded.client, founded.admins
    newcomer = keys[5]
    result = client.enact(
        admins, lambda s: client.propose_add_member(s, newcomer.address, org_of(newcomer.address), Role.ADMIN)
    )
    assert "ProposalExecuted" in event_names(result)
    assert client.admin_count() == 3
    assert client.has_role(newcomer.address, Role.ADMIN)
    # The new admin proposes, and one founder's approval carries the change out.
    proposal_id = int(client.propose_set_threshold(newcomer, 3).return_value)
    assert not client.proposal(proposal_id).executed
    client.approve(admins[0], proposal_id)
    assert client.threshold() == 3


# ---------------------------------------------------------------------------------------------- M of N


def test_a_single_admin_never_changes_membership(found: Callable[..., Founded], keys: list[Signer]) -> None:
    founded = found(3, 2)
    client, admins = founded.client, founded.admins
    member = keys[6].address
    client.enact(admins, lambda s: client.propose_add_member(s, member, org_of(member), Role.BIDDER))
    loner, other = admins[2], admins[1]
    stranger = keys[7].address

    pending = [
        client.propose_add_member(loner, stranger, org_of(stranger), Role.WITNESS),
        client.propose_remove_member(loner, member),
        client.propose_set_roles(loner, member, Role.TENDERER),
        client.propose_set_threshold(loner, 3),
        client.propose_remove_member(loner, admins[0].address),
    ]
    ids = [int(result.return_value) for result in pending]
    assert ids == [2, 3, 4, 5, 6]
    for result in pending:
        assert "ProposalExecuted" not in event_names(result)
        assert only_event(result, "ProposalApproved", client.address)["approvals"] == 1
    for proposal_id in ids:
        assert_reverts(
            founded,
            errors.ConsortiumAlreadyApproved,
            partial(client.approve, loner, proposal_id),
            accounts=[member, stranger],
            proposals=ids,
            proposalId=proposal_id,
            admin=loner.address,
        )
    assert client.member_of(stranger) == no_member(stranger)
    assert client.member_of(member) == Member(member, org_of(member), Role.BIDDER)
    assert client.threshold() == 2
    assert client.admin_count() == 3
    assert client.member_count() == 4
    assert all(not client.proposal(p).executed for p in ids)

    # A second admin's approval carries each out.
    added = client.approve(other, ids[0])
    assert only_event(added, "MemberAdded", client.address)["account"] == stranger
    roles = client.approve(other, ids[2])
    assert only_event(roles, "RolesChanged", client.address) == {
        "account": member,
        "previousRoles": int(Role.BIDDER),
        "roles": int(Role.TENDERER),
    }
    removed = client.approve(other, ids[1])
    assert only_event(removed, "MemberRemoved", client.address) == {"account": member, "orgId": org_of(member)}
    threshold = client.approve(other, ids[3])
    assert only_event(threshold, "ThresholdChanged", client.address) == {"previousThreshold": 2, "threshold": 3}
    assert client.member_count() == 4
    assert client.threshold() == 3
    # With the threshold now 3, the pending removal of a founder needs one more approval than it has.
    last = client.approve(other, ids[4])
    assert "ProposalExecuted" not in event_names(last)
    assert client.proposal(ids[4]).approvals == 2
    assert client.has_role(admins[0].address, Role.ADMIN)


def test_unknown_proposal(found: Callable[..., Founded]) -> None:
    founded = found(2, 2)
    client, admins = founded.client, founded.admins
    proposal_id = int(client.propose_set_threshold(admins[0], 2).return_value)
    for unknown in (0, proposal_id + 1, 2**64):
        assert_reverts(
            founded,
            errors.ConsortiumUnknownProposal,
            partial(client.approve, admins[1], unknown),
            proposals=[proposal_id],
            proposalId=unknown,
        )
        with pytest.raises(errors.ConsortiumUnknownProposal):
            client.proposal(unknown)


def test_non_admins_cannot_propose_or_approve(
    found: Callable[..., Founded], keys: list[Signer], outsider: Signer
) -> None:
    founded = found(2, 2, [ADMIN, ADMIN])
    client, admins = founded.client, founded.admins
    # A member holding every role but admin.
    member = keys[8]
    client.enact(
        admins, lambda s: client.propose_add_member(s, member.address, org_of(member.address), Role(ALL_ROLES - ADMIN))
    )
    pending = int(client.propose_set_threshold(admins[0], 2).return_value)
    target = keys[9].address
    for signer in (member, outsider):
        for action in (
            partial(client.propose_add_member, signer, target, org_of(target), Role.BIDDER),
            partial(client.propose_remove_member, signer, admins[1].address),
            partial(client.propose_set_roles, signer, member.address, Role.ADMIN),
            partial(client.propose_set_threshold, signer, 2),
            partial(client.approve, signer, pending),
        ):
            assert_reverts(
                founded,
                errors.ConsortiumUnauthorized,
                action,
                accounts=[member.address, target],
                proposals=[1, pending],
                account=signer.address,
                role=ADMIN,
            )
    assert not client.has_approved(pending, member.address)


def test_proposals_are_checked_when_made(found: Callable[..., Founded], keys: list[Signer]) -> None:
    founded = found(3, 2)
    client, admins = founded.client, founded.admins
    proposer = admins[0]
    newcomer, stranger = keys[10].address, keys[11].address
    org = org_of(newcomer)
    cases: list[tuple[type[errors.ContractRevert], Callable[[], object], dict[str, Any]]] = [
        (
            errors.ConsortiumZeroAddress,
            partial(client.propose_add_member, proposer, ZERO_ADDRESS, org, Role.BIDDER),
            {},
        ),
        (errors.ConsortiumZeroOrgId, partial(client.propose_add_member, proposer, newcomer, ZERO32, Role.BIDDER), {}),
        (
            errors.ConsortiumMemberExists,
            partial(client.propose_add_member, proposer, admins[1].address, org, Role.BIDDER),
            {"account": admins[1].address},
        ),
        (
            errors.ConsortiumInvalidRoles,
            partial(client.propose_add_member, proposer, newcomer, org, Role(0)),
            {"roles": 0},
        ),
        (
            errors.ConsortiumInvalidRoles,
            partial(client.propose_add_member, proposer, newcomer, org, Role(1 << 7)),
            {"roles": 1 << 7},
        ),
        (
            errors.ConsortiumUnknownMember,
            partial(client.propose_remove_member, proposer, stranger),
            {"account": stranger},
        ),
        (
            errors.ConsortiumUnknownMember,
            partial(client.propose_set_roles, proposer, stranger, Role.BIDDER),
            {"account": stranger},
        ),
        (
            errors.ConsortiumInvalidRoles,
            partial(client.propose_set_roles, proposer, admins[1].address, Role(0)),
            {"roles": 0},
        ),
        (
            errors.ConsortiumInvalidRoles,
            partial(client.propose_set_roles, proposer, admins[1].address, Role(ADMIN | 1 << 8)),
            {"roles": ADMIN | 1 << 8},
        ),
        (
            errors.ConsortiumInvalidThreshold,
            partial(client.propose_set_threshold, proposer, 0),
            {"threshold": 0, "admins": 3},
        ),
        (
            errors.ConsortiumInvalidThreshold,
            partial(client.propose_set_threshold, proposer, 1),
            {"threshold": 1, "admins": 3},
        ),
        (
            errors.ConsortiumInvalidThreshold,
            partial(client.propose_set_threshold, proposer, 4),
            {"threshold": 4, "admins": 3},
        ),
    ]
    for error, action, values in cases:
        assert_reverts(founded, error, action, accounts=[newcomer, stranger], **values)
    assert founded.proposal_count() == 0


# ------------------------------------------------------------------------------------- remove, roles, threshold


def test_remove_member(found: Callable[..., Founded], keys: list[Signer]) -> None:
    founded = found(3, 2)
    client, admins = founded.client, founded.admins
    member = keys[6].address
    client.enact(admins, lambda s: client.propose_add_member(s, member, org_of(member), Role.BIDDER | Role.WITNESS))
    assert client.member_count() == 4

    proposed = client.propose_remove_member(admins[1], member)
    proposal_id = int(proposed.return_value)
    assert only_event(proposed, "ProposalCreated", client.address) == {
        "proposalId": proposal_id,
        "kind": ProposalKind.REMOVE_MEMBER,
        "account": member,
        "orgId": org_of(member),
        "value": 0,
        "proposer": admins[1].address,
    }
    assert client.has_role(member, Role.BIDDER)
    executed = client.approve(admins[2], proposal_id)
    assert event_names(executed) == ["ProposalApproved", "MemberRemoved", "ProposalExecuted"]
    assert only_event(executed, "MemberRemoved", client.address) == {"account": member, "orgId": org_of(member)}
    assert only_event(executed, "ProposalExecuted", client.address) == {"proposalId": proposal_id}
    assert client.proposal(proposal_id) == Proposal(
        proposal_id, ProposalKind.REMOVE_MEMBER, True, 2, member, org_of(member), 0
    )
    assert client.member_of(member) == no_member(member)
    assert not client.has_role(member, Role.BIDDER)
    assert client.member_count() == 3
    assert client.admin_count() == 3

    # A removed member may join again, under another organisation id.
    other_org = fresh_id("org")
    client.enact(admins, lambda s: client.propose_add_member(s, member, other_org, Role.AGENCY))
    assert client.member_of(member) == Member(member, other_org, Role.AGENCY)


def test_removed_admin_loses_its_powers(found: Callable[..., Founded]) -> None:
    founded = found(3, 2)
    client, admins = founded.client, founded.admins
    gone = admins[2]
    pending = int(client.propose_set_threshold(admins[0], 3).return_value)
    result = client.enact(admins[:2], lambda s: client.propose_remove_member(s, gone.address))
    assert only_event(result, "MemberRemoved", client.address) == {
        "account": gone.address,
        "orgId": org_of(gone.address),
    }
    assert client.admin_count() == 2
    assert client.member_count() == 2
    for action in (partial(client.approve, gone, pending), partial(client.propose_set_threshold, gone, 2)):
        assert_reverts(
            founded,
            errors.ConsortiumUnauthorized,
            action,
            proposals=[pending],
            account=gone.address,
            role=ADMIN,
        )


def test_set_roles(found: Callable[..., Founded], keys: list[Signer]) -> None:
    founded = found(3, 2)
    client, admins = founded.client, founded.admins
    member = keys[7]
    client.enact(admins, lambda s: client.propose_add_member(s, member.address, org_of(member.address), Role.BIDDER))

    proposed = client.propose_set_roles(admins[0], member.address, Role.TENDERER | Role.AGENCY)
    proposal_id = int(proposed.return_value)
    assert only_event(proposed, "ProposalCreated", client.address) == {
        "proposalId": proposal_id,
        "kind": ProposalKind.SET_ROLES,
        "account": member.address,
        "orgId": org_of(member.address),
        "value": int(Role.TENDERER | Role.AGENCY),
        "proposer": admins[0].address,
    }
    assert client.has_role(member.address, Role.BIDDER)
    executed = client.approve(admins[2], proposal_id)
    assert event_names(executed) == ["ProposalApproved", "RolesChanged", "ProposalExecuted"]
    assert only_event(executed, "RolesChanged", client.address) == {
        "account": member.address,
        "previousRoles": int(Role.BIDDER),
        "roles": int(Role.TENDERER | Role.AGENCY),
    }
    assert client.member_of(member.address) == Member(
        member.address, org_of(member.address), Role.TENDERER | Role.AGENCY
    )
    assert not client.has_role(member.address, Role.BIDDER)
    assert client.has_role(member.address, Role.TENDERER | Role.AGENCY)
    assert client.member_count() == 4
    assert client.admin_count() == 3

    # Granting admin makes the member count as an admin and act as one ...
    client.enact(admins, lambda s: client.propose_set_roles(s, member.address, Role.ADMIN | Role.TENDERER))
    assert client.admin_count() == 4
    pending = int(client.propose_set_threshold(member, 4).return_value)
    assert client.has_approved(pending, member.address)
    # ... and revoking it takes both away again.
    result = client.enact(admins, lambda s: client.propose_set_roles(s, admins[2].address, Role.REGULATOR))
    assert only_event(result, "RolesChanged", client.address) == {
        "account": admins[2].address,
        "previousRoles": ADMIN,
        "roles": int(Role.REGULATOR),
    }
    assert client.admin_count() == 3
    assert client.member_count() == 4
    assert_reverts(
        founded,
        errors.ConsortiumUnauthorized,
        partial(client.approve, admins[2], pending),
        proposals=[pending],
        account=admins[2].address,
        role=ADMIN,
    )


def test_set_threshold(found: Callable[..., Founded], keys: list[Signer]) -> None:
    founded = found(3, 2)
    client, admins = founded.client, founded.admins
    proposed = client.propose_set_threshold(admins[1], 3)
    proposal_id = int(proposed.return_value)
    assert only_event(proposed, "ProposalCreated", client.address) == {
        "proposalId": proposal_id,
        "kind": ProposalKind.SET_THRESHOLD,
        "account": ZERO_ADDRESS,
        "orgId": ZERO32,
        "value": 3,
        "proposer": admins[1].address,
    }
    executed = client.approve(admins[0], proposal_id)
    assert event_names(executed) == ["ProposalApproved", "ThresholdChanged", "ProposalExecuted"]
    assert only_event(executed, "ThresholdChanged", client.address) == {"previousThreshold": 2, "threshold": 3}
    assert client.threshold() == 3
    assert client.proposal(proposal_id) == Proposal(
        proposal_id, ProposalKind.SET_THRESHOLD, True, 2, ZERO_ADDRESS, ZERO32, 3
    )

    # Now two approvals no longer carry a change ...
    newcomer = keys[9].address
    add = int(client.propose_add_member(admins[0], newcomer, org_of(newcomer), Role.WITNESS).return_value)
    client.approve(admins[1], add)
    assert client.member_of(newcomer) == no_member(newcomer)
    assert client.approve(admins[2], add).event("MemberAdded").args["account"] == newcomer
    # ... and lowering the threshold needs the current one too.
    lower = int(client.propose_set_threshold(admins[2], 2).return_value)
    assert "ProposalExecuted" not in event_names(client.approve(admins[0], lower))
    assert client.threshold() == 3
    lowered = client.approve(admins[1], lower)
    assert only_event(lowered, "ThresholdChanged", client.address) == {"previousThreshold": 3, "threshold": 2}


# ---------------------------------------------------------------------------------------------- locking out


@pytest.mark.parametrize("how", ["remove", "revoke admin", "remove oneself"])
def test_changes_leaving_fewer_admins_than_threshold_revert(found: Callable[..., Founded], how: str) -> None:
    founded = found(2, 2)
    client, admins = founded.client, founded.admins
    if how == "remove":
        proposer, approver, target = admins[0], admins[1], admins[1]
        proposal_id = int(client.propose_remove_member(proposer, target.address).return_value)
    elif how == "remove oneself":
        proposer, approver, target = admins[0], admins[1], admins[0]
        proposal_id = int(client.propose_remove_member(proposer, target.address).return_value)
    else:
        proposer, approver, target = admins[0], admins[1], admins[1]
        proposal_id = int(client.propose_set_roles(proposer, target.address, Role.WITNESS).return_value)
    assert_reverts(
        founded,
        errors.ConsortiumInvalidThreshold,
        partial(client.approve, approver, proposal_id),
        proposals=[proposal_id],
        threshold=2,
        admins=1,
    )
    assert not client.proposal(proposal_id).executed
    assert client.proposal(proposal_id).approvals == 1
    assert not client.has_approved(proposal_id, approver.address)
    assert client.member_of(target.address) == Member(target.address, org_of(target.address), Role.ADMIN)
    assert client.admin_count() == 2
    assert client.member_count() == 2


def test_three_of_three_cannot_shrink_without_lowering_threshold(found: Callable[..., Founded]) -> None:
    founded = found(3, 3)
    client, admins = founded.client, founded.admins
    removal = int(client.propose_remove_member(admins[0], admins[2].address).return_value)
    client.approve(admins[1], removal)
    assert_reverts(
        founded,
        errors.ConsortiumInvalidThreshold,
        partial(client.approve, admins[2], removal),
        proposals=[removal],
        threshold=3,
        admins=2,
    )
    # Lowering the threshold first lets the same proposal through.
    client.enact(admins, lambda s: client.propose_set_threshold(s, 2))
    done = client.approve(admins[2], removal)
    assert only_event(done, "MemberRemoved", client.address)["account"] == admins[2].address
    assert client.admin_count() == 2


def test_conditions_are_checked_again_at_execution(found: Callable[..., Founded], keys: list[Signer]) -> None:
    founded = found(3, 2)
    client, admins = founded.client, founded.admins
    member = keys[6].address

    # Two proposals to add the same account: the second cannot be carried out.
    first = int(client.propose_add_member(admins[0], member, org_of(member), Role.BIDDER).return_value)
    second = int(client.propose_add_member(admins[1], member, fresh_id("org"), Role.AGENCY).return_value)
    client.approve(admins[1], first)
    assert_reverts(
        founded,
        errors.ConsortiumMemberExists,
        partial(client.approve, admins[0], second),
        accounts=[member],
        proposals=[first, second],
        account=member,
    )

    # Two proposals to remove it, and one to change its roles: only the first removal can happen.
    remove_a = int(client.propose_remove_member(admins[0], member).return_value)
    remove_b = int(client.propose_remove_member(admins[1], member).return_value)
    set_roles = int(client.propose_set_roles(admins[2], member, Role.TENDERER).return_value)
    client.approve(admins[2], remove_a)
    for proposal_id, approver in ((remove_b, admins[0]), (set_roles, admins[0])):
        assert_reverts(
            founded,
            errors.ConsortiumUnknownMember,
            partial(client.approve, approver, proposal_id),
            accounts=[member],
            proposals=[remove_b, set_roles],
            account=member,
        )

    # A threshold that was possible when proposed but no longer is once an admin left.
    raise_threshold = int(client.propose_set_threshold(admins[0], 3).return_value)
    client.enact([admins[0], admins[1]], lambda s: client.propose_remove_member(s, admins[2].address))
    assert client.admin_count() == 2
    assert_reverts(
        founded,
        errors.ConsortiumInvalidThreshold,
        partial(client.approve, admins[1], raise_threshold),
        proposals=[raise_threshold],
        threshold=3,
        admins=2,
    )


@pytest.mark.parametrize("how", ["removed", "admin role revoked"])
def test_approvals_of_former_admins_no_longer_count(
    found: Callable[..., Founded], keys: list[Signer], how: str
) -> None:
    """An approval counts only while its giver is an admin: otherwise a departed (say, compromised) admin's
    pending approvals would let a single remaining admin carry out a change."""
    founded = found(3, 2)
    client, admins = founded.client, founded.admins
    departed, first, second = admins
    newcomer = keys[10].address
    pending = int(client.propose_add_member(departed, newcomer, org_of(newcomer), Role.BIDDER).return_value)
    assert client.proposal(pending).approvals == 1
    if how == "removed":
        client.enact([first, second], lambda s: client.propose_remove_member(s, departed.address))
    else:
        client.enact([first, second], lambda s: client.propose_set_roles(s, departed.address, Role.WITNESS))
    assert not client.has_role(departed.address, Role.ADMIN)
    assert client.has_approved(pending, departed.address)  # still on record, but no longer counted
    assert client.proposal(pending).approvals == 0

    lone = client.approve(first, pending)
    assert only_event(lone, "ProposalApproved", client.address) == {
        "proposalId": pending,
        "admin": first.address,
        "approvals": 1,
    }
    assert "ProposalExecuted" not in event_names(lone)
    assert client.member_of(newcomer) == no_member(newcomer)
    assert client.proposal(pending).approvals == 1

    done = client.approve(second, pending)
    assert event_names(done) == ["ProposalApproved", "MemberAdded", "ProposalExecuted"]
    assert only_event(done, "ProposalApproved", client.address)["approvals"] == 2
    assert client.proposal(pending) == Proposal(
        pending, ProposalKind.ADD_MEMBER, True, 2, newcomer, org_of(newcomer), int(Role.BIDDER)
    )
