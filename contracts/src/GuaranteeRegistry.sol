// SPDX-License-Identifier: Apache-2.0
pragma solidity 0.8.30;

import {IConsortium, ITenderRegistry, ClaimGround, CoverKind} from "./Interfaces.sol";

/// @title GuaranteeRegistry
/// @notice Electronic bid guarantees (电子投标保函): issued by guarantor members, relied upon by bids,
/// then claimed and paid, released, cancelled or expired.
/// @dev Only ids, hashes, accounts, amounts (in fen) and times are stored: the letter itself stays off
/// chain and is tied to the record by its hash. A guarantee may name its section only through a sealed
/// reference `keccak256(abi.encode(sectionId, salt))`, so that the guarantor's records need not say
/// which tender the applicant bids for. A bid commits only to a blinded cover; its cover is revealed,
/// and a guarantee bound to the bid here, from the section's opening time on, with the salt.
/// The letter's hash is anchored in the `GuaranteeIssued` event rather than in storage: no rule reads
/// it, and a verifier needs the event's transaction and block as evidence anyway.
contract GuaranteeRegistry {
    uint256 private constant _ROLE_BIDDER = 1 << 3;
    uint256 private constant _ROLE_GUARANTOR = 1 << 4;
    uint256 private constant _ROLE_TENDERER = 1 << 1;

    /// @notice Life of a guarantee. Issued is the only state from which another can be reached,
    /// except Claimed, which can only become Paid.
    enum GuaranteeState {
        None,
        Issued,
        Claimed,
        Paid,
        Released,
        Cancelled,
        Expired
    }

    struct Guarantee {
        address issuer;
        uint64 validUntil;
        GuaranteeState state;
        bool sealedRef;
        bool bound;
        address applicant;
        uint96 amount;
        address beneficiary;
        uint64 issuedAt; // chain time of the issue: a guarantee issued at or after a deadline cannot cover that bid
        bytes32 sectionRef;
    }

    struct Claim {
        ClaimGround ground;
        bytes32 sectionId;
        bytes32 evidenceHash;
        uint96 paidAmount;
        bytes32 paymentRef;
    }

    /// @notice Terms the guarantor signs; `sectionRef` is a section id or a sealed reference to one.
    struct GuaranteeTerms {
        bytes32 sectionRef;
        bool sealedRef;
        address applicant;
        address beneficiary;
        uint96 amount;
        uint64 validUntil;
        bytes32 letterHash;
    }

    IConsortium private immutable _consortium;
    address private immutable _tenderRegistry;
    mapping(bytes32 guaranteeId => Guarantee) private _guarantees;
    mapping(bytes32 guaranteeId => Claim) private _claims;

    /// @notice The caller lacks the role the action needs.
    error GuaranteeRegistryUnauthorized(address account, uint256 role);
    /// @notice Only the guarantee's issuer may do this.
    error GuaranteeRegistryNotIssuer(bytes32 guaranteeId, address account);
    /// @notice Only the guarantee's beneficiary may do this.
    error GuaranteeRegistryNotBeneficiary(bytes32 guaranteeId, address account);
    /// @notice Only the tender registry may do this.
    error GuaranteeRegistryNotTenderRegistry(address account);
    /// @notice A zero id, hash, address, amount or reference was given.
    error GuaranteeRegistryZeroValue(string field);
    /// @notice A guarantee with this id exists already.
    error GuaranteeRegistryDuplicateGuarantee(bytes32 guaranteeId);
    /// @notice No guarantee has this id.
    error GuaranteeRegistryUnknownGuarantee(bytes32 guaranteeId);
    /// @notice The section named by the guarantee does not exist.
    error GuaranteeRegistryUnknownSection(bytes32 sectionId);
    /// @notice The section's bid deadline has passed (at issue, or when the guarantee was issued).
    error GuaranteeRegistryAfterDeadline(bytes32 sectionId, uint256 openingTime, uint256 nowTime);
    /// @notice The guarantee's validity has already ended, or ends before `nowTime`.
    error GuaranteeRegistryValidityEnded(bytes32 guaranteeId, uint256 validUntil, uint256 nowTime);
    /// @notice The applicant is not a bidder member.
    error GuaranteeRegistryApplicantNotBidder(address applicant);
    /// @notice The beneficiary is not a tenderer member.
    error GuaranteeRegistryBeneficiaryNotTenderer(address beneficiary);
    /// @notice The action needs a guarantee in a state it is not in.
    error GuaranteeRegistryInvalidState(bytes32 guaranteeId, GuaranteeState state);
    /// @notice A bid already relies on this guarantee.
    error GuaranteeRegistryAlreadyBound(bytes32 guaranteeId);
    /// @notice A bid relies on this guarantee, so it cannot be cancelled.
    error GuaranteeRegistryBound(bytes32 guaranteeId);
    /// @notice The guarantee was not applied for by this bidder.
    error GuaranteeRegistryApplicantMismatch(bytes32 guaranteeId, address applicant, address bidder);
    /// @notice The guarantee's beneficiary is not the section's tenderer.
    error GuaranteeRegistryBeneficiaryMismatch(bytes32 guaranteeId, address beneficiary, address tenderer);
    /// @notice The guarantee is for another section (or the salt does not open its sealed reference).
    error GuaranteeRegistrySectionMismatch(bytes32 guaranteeId, bytes32 sectionId);
    /// @notice The guaranteed amount is below the section's bid bond.
    error GuaranteeRegistryAmountBelowBond(bytes32 guaranteeId, uint256 amount, uint256 bond);
    /// @notice The guarantee ends before the bid validity period does.
    error GuaranteeRegistryValidityTooShort(bytes32 guaranteeId, uint256 validUntil, uint256 requiredValidUntil);
    /// @notice The claim names no ground, or the section's recorded facts do not support it.
    error GuaranteeRegistryGroundNotMet(bytes32 guaranteeId, bytes32 sectionId, ClaimGround ground);
    /// @notice The guarantee does not cover the applicant's bid in that section.
    error GuaranteeRegistryNotCoveringBid(bytes32 guaranteeId, bytes32 sectionId);
    /// @notice The tender has not ended in a way that frees the applicant's bond.
    error GuaranteeRegistryNotReleasable(bytes32 guaranteeId, bytes32 sectionId);
    /// @notice The payout is zero or above the guaranteed amount.
    error GuaranteeRegistryInvalidPayout(bytes32 guaranteeId, uint256 paid, uint256 amount);
    /// @notice The guarantee is still within its validity period.
    error GuaranteeRegistryNotExpired(bytes32 guaranteeId, uint256 validUntil, uint256 nowTime);

    /// @notice A guarantor issued a guarantee.
    event GuaranteeIssued(
        bytes32 indexed guaranteeId,
        address indexed issuer,
        address indexed applicant,
        address beneficiary,
        bytes32 sectionRef,
        bool sealedRef,
        uint256 amount,
        uint256 validUntil,
        bytes32 letterHash
    );
    /// @notice A bid's revealed cover is this guarantee: from here on the guarantor knows the section.
    event GuaranteeBound(bytes32 indexed guaranteeId, bytes32 indexed sectionId, address indexed bidder);
    /// @notice The beneficiary claimed on a recorded ground.
    event GuaranteeClaimed(bytes32 indexed guaranteeId, bytes32 indexed sectionId, ClaimGround ground, bytes32 evidenceHash);
    /// @notice The guarantor paid a claim.
    event GuaranteePaid(bytes32 indexed guaranteeId, uint256 amount, bytes32 paymentRef);
    /// @notice The guarantee ended without payment.
    event GuaranteeReleased(bytes32 indexed guaranteeId, address indexed releasedBy);
    /// @notice The guarantor cancelled a guarantee no bid relied on.
    event GuaranteeCancelled(bytes32 indexed guaranteeId);
    /// @notice The guarantee's validity ended while it was still issued.
    event GuaranteeExpired(bytes32 indexed guaranteeId);

    modifier onlyRole(uint256 role) {
        if (!_consortium.hasRole(msg.sender, role)) revert GuaranteeRegistryUnauthorized(msg.sender, role);
        _;
    }

    modifier onlyTenderRegistry() {
        if (msg.sender != _tenderRegistry) revert GuaranteeRegistryNotTenderRegistry(msg.sender);
        _;
    }

    /// @param consortium_ The consortium whose members act here.
    /// @param tenderRegistry_ The tender registry (deployed right after this contract; its address is
    /// known in advance from the deployer's nonce, so no one needs a key to wire the two later).
    constructor(IConsortium consortium_, address tenderRegistry_) {
        if (address(consortium_) == address(0)) revert GuaranteeRegistryZeroValue("consortium");
        if (tenderRegistry_ == address(0)) revert GuaranteeRegistryZeroValue("tenderRegistry");
        _consortium = consortium_;
        _tenderRegistry = tenderRegistry_;
    }

    /// @notice Issue a guarantee as the calling guarantor.
    /// @dev With an open section reference the deadline and the beneficiary are checked at once; with a
    /// sealed one they are checked when a bid's revealed cover binds it, against the time of issue.
    function issue(bytes32 guaranteeId, GuaranteeTerms calldata terms) external onlyRole(_ROLE_GUARANTOR) {
        if (guaranteeId == bytes32(0)) revert GuaranteeRegistryZeroValue("guaranteeId");
        if (terms.sectionRef == bytes32(0)) revert GuaranteeRegistryZeroValue("sectionRef");
        if (terms.letterHash == bytes32(0)) revert GuaranteeRegistryZeroValue("letterHash");
        if (terms.amount == 0) revert GuaranteeRegistryZeroValue("amount");
        if (terms.applicant == address(0)) revert GuaranteeRegistryZeroValue("applicant");
        if (terms.beneficiary == address(0)) revert GuaranteeRegistryZeroValue("beneficiary");
        if (_guarantees[guaranteeId].state != GuaranteeState.None) revert GuaranteeRegistryDuplicateGuarantee(guaranteeId);
        if (terms.validUntil <= block.timestamp) {
            revert GuaranteeRegistryValidityEnded(guaranteeId, terms.validUntil, block.timestamp);
        }
        if (!_consortium.hasRole(terms.applicant, _ROLE_BIDDER)) revert GuaranteeRegistryApplicantNotBidder(terms.applicant);
        if (!terms.sealedRef) {
            (uint64 openingTime, address tenderer) = ITenderRegistry(_tenderRegistry).deadlineOf(terms.sectionRef);
            if (openingTime == 0) revert GuaranteeRegistryUnknownSection(terms.sectionRef);
            if (block.timestamp >= openingTime) {
                revert GuaranteeRegistryAfterDeadline(terms.sectionRef, openingTime, block.timestamp);
            }
            if (tenderer != terms.beneficiary) {
                revert GuaranteeRegistryBeneficiaryMismatch(guaranteeId, terms.beneficiary, tenderer);
            }
        } else if (!_consortium.hasRole(terms.beneficiary, _ROLE_TENDERER)) {
            revert GuaranteeRegistryBeneficiaryNotTenderer(terms.beneficiary);
        }
        _guarantees[guaranteeId] = Guarantee({
            issuer: msg.sender,
            validUntil: terms.validUntil,
            state: GuaranteeState.Issued,
            sealedRef: terms.sealedRef,
            bound: false,
            applicant: terms.applicant,
            amount: terms.amount,
            beneficiary: terms.beneficiary,
            issuedAt: uint64(block.timestamp),
            sectionRef: terms.sectionRef
        });
        emit GuaranteeIssued(
            guaranteeId,
            msg.sender,
            terms.applicant,
            terms.beneficiary,
            terms.sectionRef,
            terms.sealedRef,
            terms.amount,
            terms.validUntil,
            terms.letterHash
        );
    }

    /// @notice Check that the guarantee covers `bidder`'s bid in `sectionId` and mark it as relied upon.
    /// @dev Called by the tender registry when the bid's cover is revealed (after the deadline), so every
    /// failure reverts the reveal; `openingTime` is the section's deadline, before which it must have
    /// been issued.
    function bind(
        bytes32 guaranteeId,
        address bidder,
        bytes32 sectionId,
        bytes32 salt,
        address tenderer,
        uint256 bond,
        uint256 requiredValidUntil,
        uint256 openingTime
    ) external onlyTenderRegistry {
        Guarantee storage guarantee = _guarantees[guaranteeId];
        GuaranteeState state = guarantee.state;
        if (state == GuaranteeState.None) revert GuaranteeRegistryUnknownGuarantee(guaranteeId);
        if (state != GuaranteeState.Issued) revert GuaranteeRegistryInvalidState(guaranteeId, state);
        if (guarantee.bound) revert GuaranteeRegistryAlreadyBound(guaranteeId);
        if (guarantee.applicant != bidder) revert GuaranteeRegistryApplicantMismatch(guaranteeId, guarantee.applicant, bidder);
        if (guarantee.beneficiary != tenderer) {
            revert GuaranteeRegistryBeneficiaryMismatch(guaranteeId, guarantee.beneficiary, tenderer);
        }
        bytes32 expectedRef = guarantee.sealedRef ? keccak256(abi.encode(sectionId, salt)) : sectionId;
        if (guarantee.sectionRef != expectedRef) revert GuaranteeRegistrySectionMismatch(guaranteeId, sectionId);
        if (guarantee.issuedAt >= openingTime) {
            revert GuaranteeRegistryAfterDeadline(sectionId, openingTime, guarantee.issuedAt);
        }
        if (guarantee.amount < bond) revert GuaranteeRegistryAmountBelowBond(guaranteeId, guarantee.amount, bond);
        if (guarantee.validUntil < requiredValidUntil) {
            revert GuaranteeRegistryValidityTooShort(guaranteeId, guarantee.validUntil, requiredValidUntil);
        }
        guarantee.bound = true;
        emit GuaranteeBound(guaranteeId, sectionId, bidder);
    }

    /// @notice Cancel, as its issuer, a guarantee that no bid relies on.
    function cancel(bytes32 guaranteeId) external {
        Guarantee storage guarantee = _issuedGuarantee(guaranteeId);
        if (guarantee.issuer != msg.sender) revert GuaranteeRegistryNotIssuer(guaranteeId, msg.sender);
        if (guarantee.bound) revert GuaranteeRegistryBound(guaranteeId);
        guarantee.state = GuaranteeState.Cancelled;
        emit GuaranteeCancelled(guaranteeId);
    }

    /// @notice End a guarantee without payment.
    /// @dev The beneficiary may always waive its security. The issuer may release a guarantee that no
    /// bid relies on, or one whose tender ended without fault of the applicant (`sectionId` names it).
    function release(bytes32 guaranteeId, bytes32 sectionId) external {
        Guarantee storage guarantee = _issuedGuarantee(guaranteeId);
        if (msg.sender != guarantee.beneficiary) {
            if (msg.sender != guarantee.issuer) revert GuaranteeRegistryNotIssuer(guaranteeId, msg.sender);
            if (guarantee.bound) {
                _checkCoversBid(guaranteeId, sectionId, guarantee.applicant);
                if (!ITenderRegistry(_tenderRegistry).bondReleasable(sectionId, guarantee.applicant)) {
                    revert GuaranteeRegistryNotReleasable(guaranteeId, sectionId);
                }
            }
        }
        guarantee.state = GuaranteeState.Released;
        emit GuaranteeReleased(guaranteeId, msg.sender);
    }

    /// @notice Claim payment, as beneficiary, on a ground the section's on-chain record supports.
    function claim(bytes32 guaranteeId, bytes32 sectionId, ClaimGround ground, bytes32 evidenceHash) external {
        Guarantee storage guarantee = _issuedGuarantee(guaranteeId);
        if (msg.sender != guarantee.beneficiary) revert GuaranteeRegistryNotBeneficiary(guaranteeId, msg.sender);
        if (block.timestamp > guarantee.validUntil) {
            revert GuaranteeRegistryValidityEnded(guaranteeId, guarantee.validUntil, block.timestamp);
        }
        if (evidenceHash == bytes32(0)) revert GuaranteeRegistryZeroValue("evidenceHash");
        _checkCoversBid(guaranteeId, sectionId, guarantee.applicant);
        if (ground == ClaimGround.None || !ITenderRegistry(_tenderRegistry).claimGroundHolds(sectionId, guarantee.applicant, ground)) {
            revert GuaranteeRegistryGroundNotMet(guaranteeId, sectionId, ground);
        }
        guarantee.state = GuaranteeState.Claimed;
        _claims[guaranteeId] = Claim({
            ground: ground, sectionId: sectionId, evidenceHash: evidenceHash, paidAmount: 0, paymentRef: bytes32(0)
        });
        emit GuaranteeClaimed(guaranteeId, sectionId, ground, evidenceHash);
    }

    /// @notice Record, as issuer, the payout of a claim.
    function recordPayout(bytes32 guaranteeId, uint96 paidAmount, bytes32 paymentRef) external {
        Guarantee storage guarantee = _guarantees[guaranteeId];
        if (guarantee.state == GuaranteeState.None) revert GuaranteeRegistryUnknownGuarantee(guaranteeId);
        if (guarantee.state != GuaranteeState.Claimed) revert GuaranteeRegistryInvalidState(guaranteeId, guarantee.state);
        if (guarantee.issuer != msg.sender) revert GuaranteeRegistryNotIssuer(guaranteeId, msg.sender);
        if (paidAmount == 0 || paidAmount > guarantee.amount) {
            revert GuaranteeRegistryInvalidPayout(guaranteeId, paidAmount, guarantee.amount);
        }
        if (paymentRef == bytes32(0)) revert GuaranteeRegistryZeroValue("paymentRef");
        guarantee.state = GuaranteeState.Paid;
        Claim storage claimRecord = _claims[guaranteeId];
        claimRecord.paidAmount = paidAmount;
        claimRecord.paymentRef = paymentRef;
        emit GuaranteePaid(guaranteeId, paidAmount, paymentRef);
    }

    /// @notice Mark an issued guarantee whose validity has ended as expired; anyone may.
    function expire(bytes32 guaranteeId) external {
        Guarantee storage guarantee = _issuedGuarantee(guaranteeId);
        if (block.timestamp <= guarantee.validUntil) {
            revert GuaranteeRegistryNotExpired(guaranteeId, guarantee.validUntil, block.timestamp);
        }
        guarantee.state = GuaranteeState.Expired;
        emit GuaranteeExpired(guaranteeId);
    }

    /// @notice A guarantee as stored (all zero for an unknown id).
    function guaranteeOf(bytes32 guaranteeId) external view returns (Guarantee memory) {
        return _guarantees[guaranteeId];
    }

    /// @notice The claim made on a guarantee (all zero if none).
    function claimOf(bytes32 guaranteeId) external view returns (Claim memory) {
        return _claims[guaranteeId];
    }

    /// @notice The sealed reference a guarantor records for a section it must not learn.
    function sealedReference(bytes32 sectionId, bytes32 salt) external pure returns (bytes32) {
        return keccak256(abi.encode(sectionId, salt));
    }

    /// @notice The consortium whose members act here.
    function consortium() external view returns (address) {
        return address(_consortium);
    }

    /// @notice The tender registry this registry trusts for bid facts.
    function tenderRegistry() external view returns (address) {
        return _tenderRegistry;
    }

    function _issuedGuarantee(bytes32 guaranteeId) private view returns (Guarantee storage guarantee) {
        guarantee = _guarantees[guaranteeId];
        GuaranteeState state = guarantee.state;
        if (state == GuaranteeState.None) revert GuaranteeRegistryUnknownGuarantee(guaranteeId);
        if (state != GuaranteeState.Issued) revert GuaranteeRegistryInvalidState(guaranteeId, state);
    }

    function _checkCoversBid(bytes32 guaranteeId, bytes32 sectionId, address applicant) private view {
        (CoverKind kind, bytes32 cover) = ITenderRegistry(_tenderRegistry).bidCover(sectionId, applicant);
        if (kind != CoverKind.Guarantee || cover != guaranteeId) revert GuaranteeRegistryNotCoveringBid(guaranteeId, sectionId);
    }
}
