"""Who may send transactions: the genesis list, plus the members of the `Consortium` contract.

A consortium admits and removes members by M-of-N admin vote on chain (`Consortium.sol`); a node
that only knew the genesis list would keep refusing a newly admitted bank and keep serving a
removed one. So the node also reads the contract named by the genesis field
`permissioningContract`: an account is permitted while it holds any role there.

The read goes straight to the contract's storage in the state mirror, not through an EVM call:
it runs for every transaction a node admits or executes, must be cheap, and must give every
validator the same answer at the same point of a block (it sees the state after the block's
earlier transactions, like any contract would). The layout it relies on is `Consortium`'s first
state variable, `mapping(address => Member) _members` at slot 0 with `Member {bytes32 orgId;
uint256 roles}`; tests compare this read with the contract's own `memberOf` so that a layout
change cannot go unnoticed.
"""

from __future__ import annotations

from typing import Protocol

from chain_node.trie import keccak

_MEMBERS_SLOT = 0
_ROLES_OFFSET = 1  # Member.orgId is the struct's first slot, Member.roles its second


class StorageReader(Protocol):
    def storage_at(self, address: bytes, slot: int) -> int: ...


def member_roles(state: StorageReader, consortium: bytes, account: bytes) -> int:
    """The role bit mask `account` holds in the `Consortium` at `consortium` (0: not a member)."""
    base = int.from_bytes(keccak(account.rjust(32, b"\x00") + _MEMBERS_SLOT.to_bytes(32, "big")), "big")
    return state.storage_at(consortium, base + _ROLES_OFFSET)
