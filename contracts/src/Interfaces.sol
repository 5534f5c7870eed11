// SPDX-License-Identifier: Apache-2.0
pragma solidity 0.8.30;

/// @notice What the registries ask of the consortium.
interface IConsortium {
    /// @notice Whether `account` holds every bit of `role`.
    function hasRole(address account, uint256 role) external view returns (bool);
}

/// @notice Grounds on which a beneficiary may claim a bid guarantee.
enum ClaimGround {
    None,
    WithdrawalAfterDeadline,
    BidderCausedDecryptionFailure,
    WinnerRefusedToSign
}

/// @notice How a bid covers its bid bond.
enum CoverKind {
    Guarantee,
    CashDeposit
}

/// @notice What the guarantee registry asks of the tender registry.
interface ITenderRegistry {
    /// @notice The section's bid deadline and its tenderer (zero for an unknown section).
    function deadlineOf(bytes32 sectionId) external view returns (uint64 openingTime, address tenderer);
    /// @notice How the bid of `bidder` in `sectionId` covers its bond, once revealed (zero cover until then).
    function bidCover(bytes32 sectionId, address bidder) external view returns (CoverKind kind, bytes32 cover);
    /// @notice Whether the recorded facts of the section support a claim on `ground` against `bidder`.
    function claimGroundHolds(bytes32 sectionId, address bidder, ClaimGround ground) external view returns (bool);
    /// @notice Whether the bond of `bidder` is no longer needed: the tender ended without fault of the bidder.
    function bondReleasable(bytes32 sectionId, address bidder) external view returns (bool);
}

/// @notice What the tender registry asks of the guarantee registry.
interface IGuaranteeRegistry {
    /// @notice Check that a guarantee covers a bid whose cover is revealed and mark it as relied upon;
    /// reverts with the reason if not.
    function bind(
        bytes32 guaranteeId,
        address bidder,
        bytes32 sectionId,
        bytes32 salt,
        address tenderer,
        uint256 bond,
        uint256 requiredValidUntil,
        uint256 openingTime
    ) external;
    /// @notice The tender registry this guarantee registry trusts for bid facts.
    function tenderRegistry() external view returns (address);
}
