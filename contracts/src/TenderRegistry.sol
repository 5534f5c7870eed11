// SPDX-License-Identifier: Apache-2.0
pragma solidity 0.8.30;

import {IConsortium, IGuaranteeRegistry, ITenderRegistry, ClaimGround, CoverKind} from "./Interfaces.sol";

/// @title TenderRegistry
/// @notice Tenders, their sections, sealed bid commitments and the opening of each section.
/// @dev The rules that must hold even if the platform misbehaves live here: no bid after the deadline
/// (chain time), no opening step before it, a failed tender (流标) whenever fewer valid bids than the
/// section's minimum remain, an award only after the witnesses' quorum attested the opening record and
/// every objection was answered. Bid contents never come here: only the hash of the ciphertext, the
/// hash of the announced fields once opened, and a blinded commitment to the bid bond's cover, opened
/// only from the opening time on (密文保函: no guarantor learns before the opening who bids where).
contract TenderRegistry is ITenderRegistry {
    uint256 private constant _ROLE_TENDERER = 1 << 1;
    uint256 private constant _ROLE_AGENCY = 1 << 2;
    uint256 private constant _ROLE_BIDDER = 1 << 3;
    uint256 private constant _ROLE_WITNESS = 1 << 5;
    uint16 private constant _DEFAULT_MIN_VALID_BIDS = 3;
    uint256 private constant _MAX_WITNESSES = 32;
    uint256 private constant _MAX_OPENING_KEY_BYTES = 512;

    /// @notice Where a section stands.
    enum SectionStatus {
        None,
        Bidding,
        Opened,
        FailedTender,
        Awarded
    }

    /// @notice Where a bid stands. `Withdrawn` is the bidder's own withdrawal before the deadline;
    /// the two `DecryptionFailed` states follow 电子招标投标办法 art. 31 (caused by the bidder or not);
    /// `CoverRejected` is a bid whose cover commitment could not be opened to a valid cover at the
    /// opening: it is not a valid bid.
    enum BidStatus {
        None,
        Committed,
        Withdrawn,
        Opened,
        DecryptionFailedBidderCaused,
        DecryptionFailedNotBidderCaused,
        WithdrawnAfterDeadline,
        CoverRejected
    }

    /// @notice Terms of a section, fixed when it is added.
    struct SectionTerms {
        uint64 openingTime; // = bid deadline, unix seconds of chain time
        uint64 bidValidityPeriod; // seconds after the opening time during which bids bind their bidders
        uint128 bidBond; // in fen
        uint16 minValidBids; // 0 means the default of 3
        uint16 witnessQuorum;
        address[] witnesses;
        bytes openingKey; // may be empty and set later, e.g. after the witnesses' key generation
    }

    /// @dev `version` is 1 when published and grows by one with each amendment of the documents.
    struct Tender {
        address agency;
        address tenderer;
        uint32 sectionCount;
        uint32 version;
        bytes32 detailsHash;
    }

    /// @dev Packed so that a bid commit reads two slots and writes one.
    struct Section {
        // slot 0
        address tenderer;
        uint64 openingTime;
        SectionStatus status;
        bool hasOpeningKey;
        uint16 minValidBids;
        // slot 1
        uint128 bidBond;
        uint64 bidValidityPeriod;
        uint32 liveBids; // committed and not withdrawn before the deadline
        uint32 tenderVersion; // the tender's documents version, copied here so that a commit reads it for free
        // slot 2
        address agency;
        uint32 outcomes; // live bids whose decryption outcome is recorded
        uint32 openedBids; // outcomes that opened and still stand
        uint16 witnessQuorum;
        uint16 attestations;
        bool contractSigned;
        bool refusedToSign;
        // slot 3
        address winner;
        uint32 objections;
        uint32 pendingObjections;
        // slot 4, 5
        bytes32 tenderId;
        bytes32 openingRecordHash;
    }

    /// @dev `phase` zero means committed. The cover (kind and guarantee id or deposit reference) is known
    /// only once revealed, from the opening time on. `confirmedAmendments` counts the amendments of the tender
    /// documents the bidder last bid on (commit, replace) or confirmed (`confirmBid`): the version minus one,
    /// so that a bid on the documents as published leaves the phase slot zero and costs no extra write.
    struct Bid {
        bytes32 ciphertextHash;
        bytes32 coverCommitment;
        BidStatus phase;
        CoverKind coverKind;
        bool coverRevealed;
        uint32 confirmedAmendments;
        bytes32 announcedHash;
        bytes32 cover;
    }

    /// @notice One bid's decryption outcome, for recording a whole opening in a few transactions.
    struct Outcome {
        address bidder;
        BidStatus status; // Opened, DecryptionFailedBidderCaused, DecryptionFailedNotBidderCaused or CoverRejected
        bytes32 hash; // the announced fields' hash if opened, else the failure's evidence hash
    }

    struct Objection {
        address bidder;
        bytes32 objectionHash;
        bytes32 answerHash;
    }

    IConsortium private immutable _consortium;
    IGuaranteeRegistry private immutable _guaranteeRegistry;
    mapping(bytes32 tenderId => Tender) private _tenders;
    mapping(bytes32 tenderId => bytes32[]) private _tenderSections;
    mapping(bytes32 sectionId => Section) private _sections;
    mapping(bytes32 sectionId => address[]) private _witnesses;
    mapping(bytes32 sectionId => mapping(address witness => uint8)) private _witnessState; // 1 listed, 2 attested
    mapping(bytes32 sectionId => bytes) private _openingKeys;
    mapping(bytes32 sectionId => mapping(address bidder => Bid)) private _bids;
    mapping(bytes32 sectionId => mapping(uint256 objectionId => Objection)) private _objections;
    mapping(bytes32 sectionId => mapping(address witness => bytes32)) private _decryptionShares;
    mapping(bytes32 sectionId => uint256) private _earlyAccessAttempts;

    /// @notice The caller lacks the role the action needs.
    error TenderRegistryUnauthorized(address account, uint256 role);
    /// @notice Only the section's (or tender's) agency may do this.
    error TenderRegistryNotAgency(bytes32 id, address account);
    /// @notice Only the section's tenderer may do this.
    error TenderRegistryNotTenderer(bytes32 sectionId, address account);
    /// @notice The caller is not one of the section's witnesses.
    error TenderRegistryNotWitness(bytes32 sectionId, address account);
    /// @notice A zero id, hash, address or amount was given.
    error TenderRegistryZeroValue(string field);
    /// @notice A tender with this id exists already.
    error TenderRegistryDuplicateTender(bytes32 tenderId);
    /// @notice No tender has this id.
    error TenderRegistryUnknownTender(bytes32 tenderId);
    /// @notice A section with this id exists already.
    error TenderRegistryDuplicateSection(bytes32 sectionId);
    /// @notice No section has this id.
    error TenderRegistryUnknownSection(bytes32 sectionId);
    /// @notice The named tenderer is not a tenderer member.
    error TenderRegistryTendererNotMember(address tenderer);
    /// @notice The opening time is not in the future.
    error TenderRegistryOpeningTimeInPast(uint256 openingTime, uint256 nowTime);
    /// @notice The witness set, quorum or validity period is not acceptable.
    error TenderRegistryInvalidTerms(string field);
    /// @notice A listed witness is not a witness member, or is listed twice.
    error TenderRegistryInvalidWitness(address witness);
    /// @notice The opening key is empty or too long.
    error TenderRegistryInvalidOpeningKey(uint256 length);
    /// @notice The opening key cannot change once bids rely on it.
    error TenderRegistryOpeningKeyLocked(bytes32 sectionId);
    /// @notice Bids need the section's opening key, which is not set yet.
    error TenderRegistryOpeningKeyMissing(bytes32 sectionId);
    /// @notice The bid deadline has passed.
    error TenderRegistryBidAfterDeadline(bytes32 sectionId, uint256 openingTime, uint256 nowTime);
    /// @notice The opening time has not come yet.
    error TenderRegistryBeforeOpening(bytes32 sectionId, uint256 openingTime, uint256 nowTime);
    /// @notice The section is not in the status the action needs.
    error TenderRegistryInvalidSectionStatus(bytes32 sectionId, SectionStatus status);
    /// @notice The bidder already has a live bid in this section.
    error TenderRegistryBidExists(bytes32 sectionId, address bidder);
    /// @notice The bid is not in the status the action needs.
    error TenderRegistryInvalidBidStatus(bytes32 sectionId, address bidder, BidStatus status);
    /// @notice A bid's cover commitment is zero, or a revealed cover names no guarantee or deposit.
    error TenderRegistryInvalidCover(bytes32 sectionId);
    /// @notice The revealed cover does not open the bid's cover commitment.
    error TenderRegistryCoverMismatch(bytes32 sectionId, address bidder);
    /// @notice The bid's cover has already been revealed.
    error TenderRegistryCoverAlreadyRevealed(bytes32 sectionId, address bidder);
    /// @notice The bid's cover has not been revealed yet, so it cannot count as opened.
    error TenderRegistryCoverNotRevealed(bytes32 sectionId, address bidder);
    /// @notice Only the section's agency or the bidder itself may reveal a bid's cover.
    error TenderRegistryNotAgencyOrBidder(bytes32 sectionId, address account);
    /// @notice Some live bids still lack a decryption outcome.
    error TenderRegistryOutcomesPending(bytes32 sectionId, uint256 pending);
    /// @notice The hash is not the section's opening record.
    error TenderRegistryRecordMismatch(bytes32 sectionId, bytes32 expected, bytes32 given);
    /// @notice This witness has already attested the opening record.
    error TenderRegistryAlreadyAttested(bytes32 sectionId, address witness);
    /// @notice The witnesses' quorum has not attested the opening record yet.
    error TenderRegistryNotWitnessed(bytes32 sectionId, uint256 attestations, uint256 quorum);
    /// @notice Objections wait for the agency's answer.
    error TenderRegistryObjectionsPending(bytes32 sectionId, uint256 pending);
    /// @notice No objection has this id in the section.
    error TenderRegistryUnknownObjection(bytes32 sectionId, uint256 objectionId);
    /// @notice The objection has already been answered.
    error TenderRegistryObjectionAnswered(bytes32 sectionId, uint256 objectionId);
    /// @notice The winner's signature of the contract, or refusal, is already recorded.
    error TenderRegistrySigningRecorded(bytes32 sectionId);
    /// @notice This witness has already published its decryption shares for the section.
    error TenderRegistrySharesAlreadyPublished(bytes32 sectionId, address witness);
    /// @notice Only the section's witnesses and its agency may report an early-access attempt.
    error TenderRegistryNotWitnessOrAgency(bytes32 sectionId, address account);
    /// @notice A batch outcome is not one of Opened, DecryptionFailedBidderCaused, DecryptionFailedNotBidderCaused,
    /// CoverRejected.
    error TenderRegistryInvalidOutcome(bytes32 sectionId, address bidder, BidStatus status);
    /// @notice The tender documents can be amended only before the earliest opening time of its sections.
    error TenderRegistryAmendmentAfterDeadline(bytes32 tenderId, bytes32 sectionId, uint256 openingTime, uint256 nowTime);
    /// @notice A bid can be confirmed only for the tender documents' current version.
    error TenderRegistryStaleVersion(bytes32 sectionId, uint256 given, uint256 current);
    /// @notice The guarantee registry does not point back to this registry.
    error TenderRegistryMiswired(address guaranteeRegistry, address pointsTo);

    /// @notice A tender was published.
    event TenderCreated(bytes32 indexed tenderId, address indexed agency, address indexed tenderer, bytes32 detailsHash);
    /// @notice The tender documents were amended before the deadline; `detailsHash` is the new details' hash.
    /// Bids placed on an earlier version stand only once their bidders confirm or replace them.
    event TenderAmended(bytes32 indexed tenderId, uint256 version, bytes32 detailsHash);
    /// @notice A bidder confirmed that its live bid stands for the given version of the tender documents.
    event BidConfirmed(bytes32 indexed sectionId, address indexed bidder, uint256 version);
    /// @notice A section was added to a tender.
    event SectionAdded(
        bytes32 indexed tenderId,
        bytes32 indexed sectionId,
        uint256 openingTime,
        uint256 bidValidityPeriod,
        uint256 bidBond,
        uint256 minValidBids,
        uint256 witnessQuorum,
        address[] witnesses
    );
    /// @notice The section's opening public key was anchored.
    event OpeningKeySet(bytes32 indexed sectionId, bytes32 keyHash);
    /// @notice A sealed bid's commitment and its blinded cover commitment were anchored before the deadline.
    event BidCommitted(bytes32 indexed sectionId, address indexed bidder, bytes32 ciphertextHash, bytes32 coverCommitment);
    /// @notice A bid's cover was revealed at the opening (a guarantee is bound in the same transaction).
    event CoverRevealed(bytes32 indexed sectionId, address indexed bidder, CoverKind kind, bytes32 cover);
    /// @notice The agency recorded that a bid's cover could not be revealed to a valid cover.
    event CoverRejected(bytes32 indexed sectionId, address indexed bidder, bytes32 evidenceHash);
    /// @notice A bidder replaced its sealed bid before the deadline.
    event BidReplaced(bytes32 indexed sectionId, address indexed bidder, bytes32 ciphertextHash);
    /// @notice A bidder withdrew its bid before the deadline.
    event BidWithdrawn(bytes32 indexed sectionId, address indexed bidder);
    /// @notice A bid was decrypted; `announcedHash` is the hash of its announced fields (唱标).
    event BidOpened(bytes32 indexed sectionId, address indexed bidder, bytes32 announcedHash);
    /// @notice A bid could not be decrypted.
    event BidDecryptionFailed(bytes32 indexed sectionId, address indexed bidder, bool bidderCaused, bytes32 evidenceHash);
    /// @notice A bidder withdrew its bid after the deadline (its bond may be claimed).
    event BidWithdrawnAfterDeadline(bytes32 indexed sectionId, address indexed bidder, bytes32 evidenceHash);
    /// @notice The opening closed with enough valid bids; `recordHash` is the opening record's hash.
    event OpeningClosed(bytes32 indexed sectionId, bytes32 recordHash, uint256 validBids);
    /// @notice The section became a failed tender (流标) by rule.
    event TenderFailed(bytes32 indexed sectionId, bytes32 recordHash, uint256 validBids, uint256 minValidBids);
    /// @notice A witness attested the opening record.
    event OpeningAttested(bytes32 indexed sectionId, address indexed witness, bytes32 recordHash, uint256 attestations);
    /// @notice The witnesses' quorum has attested the opening record.
    event SectionWitnessed(bytes32 indexed sectionId, bytes32 recordHash);
    /// @notice A bidder raised an objection (异议).
    event ObjectionRaised(bytes32 indexed sectionId, uint256 indexed objectionId, address indexed bidder, bytes32 objectionHash);
    /// @notice The agency answered an objection.
    event ObjectionAnswered(bytes32 indexed sectionId, uint256 indexed objectionId, bytes32 answerHash);
    /// @notice The section was awarded.
    event Awarded(bytes32 indexed sectionId, address indexed winner, bytes32 awardHash);
    /// @notice The winner signed the contract.
    event ContractSigned(bytes32 indexed sectionId, bytes32 contractHash);
    /// @notice The winner refused to sign the contract.
    event RefusalToSignRecorded(bytes32 indexed sectionId, bytes32 evidenceHash);
    /// @notice A witness published its decryption shares for the section; `sharesHash` is the batch's hash.
    event DecryptionSharesPublished(bytes32 indexed sectionId, address indexed witness, bytes32 sharesHash);
    /// @notice Someone asked for a decryption share, or to read sealed bids, before the opening time;
    /// `evidenceHash` is the hash of the request (kept off chain), `attempts` the section's count so far.
    event EarlyAccessAttempted(bytes32 indexed sectionId, address indexed reporter, bytes32 evidenceHash, uint256 attempts);

    modifier onlyRole(uint256 role) {
        if (!_consortium.hasRole(msg.sender, role)) revert TenderRegistryUnauthorized(msg.sender, role);
        _;
    }

    /// @param consortium_ The consortium whose members act here.
    /// @param guaranteeRegistry_ The guarantee registry; it must have been deployed pointing at this contract.
    constructor(IConsortium consortium_, IGuaranteeRegistry guaranteeRegistry_) {
        if (address(consortium_) == address(0)) revert TenderRegistryZeroValue("consortium");
        if (address(guaranteeRegistry_) == address(0)) revert TenderRegistryZeroValue("guaranteeRegistry");
        address pointsTo = guaranteeRegistry_.tenderRegistry();
        if (pointsTo != address(this)) revert TenderRegistryMiswired(address(guaranteeRegistry_), pointsTo);
        _consortium = consortium_;
        _guaranteeRegistry = guaranteeRegistry_;
    }

    // ------------------------------------------------------------------ tenders and sections

    /// @notice Publish a tender as its agency (an agency member, or the tenderer acting for itself).
    function createTender(bytes32 tenderId, address tenderer, bytes32 detailsHash) external {
        if (!_consortium.hasRole(msg.sender, _ROLE_AGENCY) && !(msg.sender == tenderer && _consortium.hasRole(msg.sender, _ROLE_TENDERER))) {
            revert TenderRegistryUnauthorized(msg.sender, _ROLE_AGENCY);
        }
        if (tenderId == bytes32(0)) revert TenderRegistryZeroValue("tenderId");
        if (detailsHash == bytes32(0)) revert TenderRegistryZeroValue("detailsHash");
        if (tenderer == address(0)) revert TenderRegistryZeroValue("tenderer");
        if (_tenders[tenderId].agency != address(0)) revert TenderRegistryDuplicateTender(tenderId);
        if (!_consortium.hasRole(tenderer, _ROLE_TENDERER)) revert TenderRegistryTendererNotMember(tenderer);
        _tenders[tenderId] =
            Tender({agency: msg.sender, tenderer: tenderer, sectionCount: 0, version: 1, detailsHash: detailsHash});
        emit TenderCreated(tenderId, msg.sender, tenderer, detailsHash);
    }

    /// @notice Add a section to a tender, as the tender's agency.
    function addSection(bytes32 tenderId, bytes32 sectionId, SectionTerms calldata terms) external {
        Tender storage tender = _tenders[tenderId];
        if (tender.agency == address(0)) revert TenderRegistryUnknownTender(tenderId);
        if (tender.agency != msg.sender) revert TenderRegistryNotAgency(tenderId, msg.sender);
        if (sectionId == bytes32(0)) revert TenderRegistryZeroValue("sectionId");
        if (_sections[sectionId].status != SectionStatus.None) revert TenderRegistryDuplicateSection(sectionId);
        if (terms.openingTime <= block.timestamp) revert TenderRegistryOpeningTimeInPast(terms.openingTime, block.timestamp);
        if (terms.bidBond == 0) revert TenderRegistryZeroValue("bidBond");
        if (terms.bidValidityPeriod == 0) revert TenderRegistryInvalidTerms("bidValidityPeriod");
        uint16 minValidBids = terms.minValidBids == 0 ? _DEFAULT_MIN_VALID_BIDS : terms.minValidBids;
        uint256 witnessCount = terms.witnesses.length;
        if (witnessCount == 0 || witnessCount > _MAX_WITNESSES) revert TenderRegistryInvalidTerms("witnesses");
        if (terms.witnessQuorum == 0 || terms.witnessQuorum > witnessCount) revert TenderRegistryInvalidTerms("witnessQuorum");
        for (uint256 i = 0; i < witnessCount; ++i) {
            address witness = terms.witnesses[i];
            if (!_consortium.hasRole(witness, _ROLE_WITNESS) || _witnessState[sectionId][witness] != 0) {
                revert TenderRegistryInvalidWitness(witness);
            }
            _witnessState[sectionId][witness] = 1;
        }
        _witnesses[sectionId] = terms.witnesses;
        Section storage section = _sections[sectionId];
        section.tenderer = tender.tenderer;
        section.openingTime = terms.openingTime;
        section.status = SectionStatus.Bidding;
        section.minValidBids = minValidBids;
        section.bidBond = terms.bidBond;
        section.bidValidityPeriod = terms.bidValidityPeriod;
        section.agency = msg.sender;
        section.witnessQuorum = terms.witnessQuorum;
        section.tenderId = tenderId;
        section.tenderVersion = tender.version;
        tender.sectionCount += 1;
        _tenderSections[tenderId].push(sectionId);
        emit SectionAdded(
            tenderId,
            sectionId,
            terms.openingTime,
            terms.bidValidityPeriod,
            terms.bidBond,
            minValidBids,
            terms.witnessQuorum,
            terms.witnesses
        );
        if (terms.openingKey.length != 0) _setOpeningKey(sectionId, section, terms.openingKey);
    }

    /// @notice Amend the tender documents, as the tender's agency, before the earliest opening time of its
    /// sections (chain time): anchors the new details' hash and bumps the version. Bids already placed
    /// keep their older version until their bidders confirm (`confirmBid`) or replace them.
    /// @dev Sections are few (the platform allows 20), so copying the version into each is cheap and keeps
    /// `commitBid` from reading the tender.
    function amendTender(bytes32 tenderId, bytes32 detailsHash) external {
        Tender storage tender = _tenders[tenderId];
        if (tender.agency == address(0)) revert TenderRegistryUnknownTender(tenderId);
        if (tender.agency != msg.sender) revert TenderRegistryNotAgency(tenderId, msg.sender);
        if (detailsHash == bytes32(0)) revert TenderRegistryZeroValue("detailsHash");
        uint32 version = tender.version + 1;
        bytes32[] storage sectionIds = _tenderSections[tenderId];
        uint256 count = sectionIds.length;
        for (uint256 i = 0; i < count; ++i) {
            Section storage section = _sections[sectionIds[i]];
            uint256 openingTime = section.openingTime;
            if (block.timestamp >= openingTime) {
                revert TenderRegistryAmendmentAfterDeadline(tenderId, sectionIds[i], openingTime, block.timestamp);
            }
            section.tenderVersion = version;
        }
        tender.version = version;
        tender.detailsHash = detailsHash;
        emit TenderAmended(tenderId, version, detailsHash);
    }

    /// @notice Anchor the section's opening public key, as its agency, before any bid relies on it.
    function setOpeningKey(bytes32 sectionId, bytes calldata openingKey) external {
        Section storage section = _agencySection(sectionId);
        _checkBeforeDeadline(sectionId, section);
        if (section.liveBids != 0) revert TenderRegistryOpeningKeyLocked(sectionId);
        _setOpeningKey(sectionId, section, openingKey);
    }

    // ------------------------------------------------------------------ bids, before the deadline

    /// @notice Commit a sealed bid, as a bidder member, before the deadline.
    /// @dev Nothing about the cover goes on chain here, so that no consortium member (guarantors
    /// included) learns from the commit which guarantee or deposit backs which section's bid.
    /// @param ciphertextHash Hash of the sealed (encrypted) bid document.
    /// @param coverCommitment `coverCommitmentOf(sectionId, bidder, kind, cover, salt)`: the bid bond's
    /// cover blinded by a random salt known to the bidder and the platform, revealed at the opening.
    function commitBid(bytes32 sectionId, bytes32 ciphertextHash, bytes32 coverCommitment)
        external
        onlyRole(_ROLE_BIDDER)
    {
        Section storage section = _sections[sectionId];
        _checkBeforeDeadline(sectionId, section);
        if (!section.hasOpeningKey) revert TenderRegistryOpeningKeyMissing(sectionId);
        if (ciphertextHash == bytes32(0)) revert TenderRegistryZeroValue("ciphertextHash");
        if (coverCommitment == bytes32(0)) revert TenderRegistryInvalidCover(sectionId);
        Bid storage bid = _bids[sectionId][msg.sender];
        BidStatus status = _bidStatus(bid);
        if (status == BidStatus.Committed) revert TenderRegistryBidExists(sectionId, msg.sender);
        bid.ciphertextHash = ciphertextHash;
        bid.coverCommitment = coverCommitment;
        // Only a bid withdrawn before the deadline can be committed again; its cover was never revealed.
        // Writing the phase slot anyway records the documents' version the bid was made on.
        bid.phase = BidStatus.None;
        bid.confirmedAmendments = _amendments(section);
        // Cannot overflow: a uint32 of live bids would need four billion commit transactions.
        unchecked {
            section.liveBids += 1;
        }
        emit BidCommitted(sectionId, msg.sender, ciphertextHash, coverCommitment);
    }

    /// @notice Replace the sealed document of one's live bid before the deadline; the cover stays. A new
    /// document is made on the current tender documents, so it also confirms their version.
    function replaceBid(bytes32 sectionId, bytes32 ciphertextHash) external {
        Section storage section = _sections[sectionId];
        _checkBeforeDeadline(sectionId, section);
        if (ciphertextHash == bytes32(0)) revert TenderRegistryZeroValue("ciphertextHash");
        Bid storage bid = _liveBid(sectionId, msg.sender, BidStatus.Committed);
        bid.ciphertextHash = ciphertextHash;
        bid.confirmedAmendments = _amendments(section);
        emit BidReplaced(sectionId, msg.sender, ciphertextHash);
    }

    /// @notice Confirm, as the bidder, before the deadline, that one's live bid stands for `version` of the
    /// tender documents, which must be the current one (so a confirmation sent before an amendment landed
    /// cannot count for it).
    function confirmBid(bytes32 sectionId, uint32 version) external {
        Section storage section = _sections[sectionId];
        _checkBeforeDeadline(sectionId, section);
        uint32 current = section.tenderVersion;
        if (version != current) revert TenderRegistryStaleVersion(sectionId, version, current);
        Bid storage bid = _liveBid(sectionId, msg.sender, BidStatus.Committed);
        bid.confirmedAmendments = _amendments(section);
        emit BidConfirmed(sectionId, msg.sender, version);
    }

    /// @notice Withdraw one's live bid before the deadline. No guarantee was bound yet (covers are
    /// revealed only at the opening), so there is nothing to free.
    function withdrawBid(bytes32 sectionId) external {
        Section storage section = _sections[sectionId];
        _checkBeforeDeadline(sectionId, section);
        Bid storage bid = _liveBid(sectionId, msg.sender, BidStatus.Committed);
        bid.phase = BidStatus.Withdrawn;
        section.liveBids -= 1;
        emit BidWithdrawn(sectionId, msg.sender);
    }

    // ------------------------------------------------------------------ covers, from the opening time on

    /// @notice Reveal a bid's cover, as the section's agency or the bidder itself, from the opening time
    /// on; a guarantee is checked and bound to the bid here (`GuaranteeBound`), which is how its
    /// guarantor learns the section. Allowed once, for any bid that was live at the deadline and has
    /// not been rejected for its cover, so that a claim on the guarantee of a bidder who withdrew after
    /// the deadline or failed its decryption can still be made.
    /// @param kind A guarantee or a cash deposit.
    /// @param cover The guarantee id, or the cash deposit's reference hash.
    /// @param salt The blinding salt; for a guarantee with a sealed section reference, also its salt.
    function revealCover(bytes32 sectionId, address bidder, CoverKind kind, bytes32 cover, bytes32 salt) external {
        Section storage section = _existingSection(sectionId);
        if (msg.sender != section.agency && msg.sender != bidder) {
            revert TenderRegistryNotAgencyOrBidder(sectionId, msg.sender);
        }
        _checkAfterDeadline(sectionId, section);
        Bid storage bid = _bids[sectionId][bidder];
        BidStatus status = _bidStatus(bid);
        if (status == BidStatus.None || status == BidStatus.Withdrawn || status == BidStatus.CoverRejected) {
            revert TenderRegistryInvalidBidStatus(sectionId, bidder, status);
        }
        if (bid.coverRevealed) revert TenderRegistryCoverAlreadyRevealed(sectionId, bidder);
        if (cover == bytes32(0)) revert TenderRegistryInvalidCover(sectionId);
        if (bid.coverCommitment != coverCommitmentOf(sectionId, bidder, kind, cover, salt)) {
            revert TenderRegistryCoverMismatch(sectionId, bidder);
        }
        bid.coverKind = kind;
        bid.coverRevealed = true;
        bid.cover = cover;
        emit CoverRevealed(sectionId, bidder, kind, cover);
        if (kind == CoverKind.Guarantee) {
            uint256 openingTime = section.openingTime;
            _guaranteeRegistry.bind(
                cover,
                bidder,
                sectionId,
                salt,
                section.tenderer,
                section.bidBond,
                openingTime + section.bidValidityPeriod,
                openingTime
            );
        }
    }

    // ------------------------------------------------------------------ opening, after the deadline

    /// @notice Record, as agency, that a bid was decrypted, with the hash of its announced fields.
    function recordBidOpened(bytes32 sectionId, address bidder, bytes32 announcedHash) external {
        _recordOpened(sectionId, _openingSection(sectionId), bidder, announcedHash);
    }

    /// @notice Record, as agency, that a bid failed to decrypt and whether the bidder caused it.
    /// @dev 电子招标投标办法 art. 31: a failure caused by the bidder counts against it (its bond may be
    /// claimed); one not caused by it is treated as a withdrawal.
    function recordDecryptionFailure(bytes32 sectionId, address bidder, bool bidderCaused, bytes32 evidenceHash)
        external
    {
        _recordFailure(sectionId, _openingSection(sectionId), bidder, bidderCaused, evidenceHash);
    }

    /// @notice Record, as agency, the decryption outcomes of many bids at once (same rules and events as
    /// `recordBidOpened` and `recordDecryptionFailure`), so that a large opening needs few transactions.
    /// `CoverRejected` marks a bid whose cover was not revealed because it opens to no valid cover.
    function recordOutcomes(bytes32 sectionId, Outcome[] calldata outcomes) external {
        Section storage section = _openingSection(sectionId);
        uint256 count = outcomes.length;
        for (uint256 i = 0; i < count; ++i) {
            Outcome calldata outcome = outcomes[i];
            BidStatus status = outcome.status;
            if (status == BidStatus.Opened) {
                _recordOpened(sectionId, section, outcome.bidder, outcome.hash);
            } else if (status == BidStatus.DecryptionFailedBidderCaused || status == BidStatus.DecryptionFailedNotBidderCaused) {
                _recordFailure(sectionId, section, outcome.bidder, status == BidStatus.DecryptionFailedBidderCaused, outcome.hash);
            } else if (status == BidStatus.CoverRejected) {
                _recordCoverRejected(sectionId, section, outcome.bidder, outcome.hash);
            } else {
                revert TenderRegistryInvalidOutcome(sectionId, outcome.bidder, status);
            }
        }
    }

    /// @notice Anchor, as one of the section's witnesses, the hash of its decryption shares, once, after
    /// the opening time and while the opening is under way. The shares themselves stay off chain.
    function publishDecryptionShares(bytes32 sectionId, bytes32 sharesHash) external {
        Section storage section = _existingSection(sectionId);
        if (_witnessState[sectionId][msg.sender] == 0) revert TenderRegistryNotWitness(sectionId, msg.sender);
        _checkAfterDeadline(sectionId, section);
        if (section.status != SectionStatus.Bidding) revert TenderRegistryInvalidSectionStatus(sectionId, section.status);
        if (sharesHash == bytes32(0)) revert TenderRegistryZeroValue("sharesHash");
        if (_decryptionShares[sectionId][msg.sender] != bytes32(0)) {
            revert TenderRegistrySharesAlreadyPublished(sectionId, msg.sender);
        }
        _decryptionShares[sectionId][msg.sender] = sharesHash;
        emit DecryptionSharesPublished(sectionId, msg.sender, sharesHash);
    }

    /// @notice Anchor, as a witness of the section or its agency, an attempt to get a decryption share or
    /// to read sealed bids early (at any time); the regulator reads these events.
    function reportEarlyAccess(bytes32 sectionId, bytes32 evidenceHash) external {
        Section storage section = _existingSection(sectionId);
        if (_witnessState[sectionId][msg.sender] == 0 && section.agency != msg.sender) {
            revert TenderRegistryNotWitnessOrAgency(sectionId, msg.sender);
        }
        if (evidenceHash == bytes32(0)) revert TenderRegistryZeroValue("evidenceHash");
        uint256 attempts = _earlyAccessAttempts[sectionId] + 1;
        _earlyAccessAttempts[sectionId] = attempts;
        emit EarlyAccessAttempted(sectionId, msg.sender, evidenceHash, attempts);
    }

    /// @notice Record, as agency, that a bidder withdrew its bid after the deadline (before the award).
    function recordWithdrawalAfterDeadline(bytes32 sectionId, address bidder, bytes32 evidenceHash) external {
        Section storage section = _agencySection(sectionId);
        _checkAfterDeadline(sectionId, section);
        SectionStatus sectionStatus = section.status;
        if (sectionStatus == SectionStatus.Awarded || sectionStatus == SectionStatus.FailedTender) {
            revert TenderRegistryInvalidSectionStatus(sectionId, sectionStatus);
        }
        if (evidenceHash == bytes32(0)) revert TenderRegistryZeroValue("evidenceHash");
        Bid storage bid = _bids[sectionId][bidder];
        BidStatus status = _bidStatus(bid);
        if (status == BidStatus.Committed) {
            section.outcomes += 1;
        } else if (status == BidStatus.Opened) {
            section.openedBids -= 1;
        } else {
            revert TenderRegistryInvalidBidStatus(sectionId, bidder, status);
        }
        bid.phase = BidStatus.WithdrawnAfterDeadline;
        emit BidWithdrawnAfterDeadline(sectionId, bidder, evidenceHash);
        if (sectionStatus == SectionStatus.Opened && section.openedBids < section.minValidBids) {
            section.status = SectionStatus.FailedTender;
            emit TenderFailed(sectionId, section.openingRecordHash, section.openedBids, section.minValidBids);
        }
    }

    /// @notice Close the opening, as agency, anchoring the opening record's hash.
    /// @dev The contract, not the operator, decides between an opened section and a failed tender:
    /// fewer live bids than the minimum fail at once; otherwise every live bid needs its outcome and
    /// the opened ones are counted.
    function closeOpening(bytes32 sectionId, bytes32 recordHash) external {
        Section storage section = _openingSection(sectionId);
        if (recordHash == bytes32(0)) revert TenderRegistryZeroValue("recordHash");
        uint256 live = section.liveBids;
        uint256 minimum = section.minValidBids;
        section.openingRecordHash = recordHash;
        if (live >= minimum) {
            uint256 outcomes = section.outcomes;
            if (outcomes < live) revert TenderRegistryOutcomesPending(sectionId, live - outcomes);
        }
        uint256 valid = section.openedBids;
        if (valid < minimum) {
            section.status = SectionStatus.FailedTender;
            emit TenderFailed(sectionId, recordHash, valid, minimum);
        } else {
            section.status = SectionStatus.Opened;
            emit OpeningClosed(sectionId, recordHash, valid);
        }
    }

    /// @notice Attest, as one of the section's witnesses, the opening record's hash.
    function attestOpening(bytes32 sectionId, bytes32 recordHash) external {
        Section storage section = _existingSection(sectionId);
        uint8 witnessState = _witnessState[sectionId][msg.sender];
        if (witnessState == 0) revert TenderRegistryNotWitness(sectionId, msg.sender);
        if (section.status == SectionStatus.Bidding) revert TenderRegistryInvalidSectionStatus(sectionId, section.status);
        if (witnessState == 2) revert TenderRegistryAlreadyAttested(sectionId, msg.sender);
        bytes32 expected = section.openingRecordHash;
        if (recordHash != expected) revert TenderRegistryRecordMismatch(sectionId, expected, recordHash);
        _witnessState[sectionId][msg.sender] = 2;
        uint16 attestations = section.attestations + 1;
        section.attestations = attestations;
        emit OpeningAttested(sectionId, msg.sender, recordHash, attestations);
        if (attestations == section.witnessQuorum) emit SectionWitnessed(sectionId, recordHash);
    }

    /// @notice Raise an objection, as a bidder of the section, after the deadline and before the award.
    /// @return objectionId The objection's number within the section (from 1).
    function raiseObjection(bytes32 sectionId, bytes32 objectionHash) external returns (uint256 objectionId) {
        Section storage section = _existingSection(sectionId);
        _checkAfterDeadline(sectionId, section);
        if (section.status == SectionStatus.Awarded) revert TenderRegistryInvalidSectionStatus(sectionId, section.status);
        if (objectionHash == bytes32(0)) revert TenderRegistryZeroValue("objectionHash");
        BidStatus status = _bidStatus(_bids[sectionId][msg.sender]);
        if (status == BidStatus.None || status == BidStatus.Withdrawn) {
            revert TenderRegistryInvalidBidStatus(sectionId, msg.sender, status);
        }
        objectionId = section.objections + 1;
        section.objections = uint32(objectionId);
        section.pendingObjections += 1;
        _objections[sectionId][objectionId] = Objection({bidder: msg.sender, objectionHash: objectionHash, answerHash: 0});
        emit ObjectionRaised(sectionId, objectionId, msg.sender, objectionHash);
    }

    /// @notice Answer an objection, as agency.
    function answerObjection(bytes32 sectionId, uint256 objectionId, bytes32 answerHash) external {
        Section storage section = _agencySection(sectionId);
        if (answerHash == bytes32(0)) revert TenderRegistryZeroValue("answerHash");
        Objection storage objection = _objections[sectionId][objectionId];
        if (objection.bidder == address(0)) revert TenderRegistryUnknownObjection(sectionId, objectionId);
        if (objection.answerHash != bytes32(0)) revert TenderRegistryObjectionAnswered(sectionId, objectionId);
        objection.answerHash = answerHash;
        section.pendingObjections -= 1;
        emit ObjectionAnswered(sectionId, objectionId, answerHash);
    }

    /// @notice Award the section, as agency, to a bidder whose bid opened.
    function award(bytes32 sectionId, address winner, bytes32 awardHash) external {
        Section storage section = _agencySection(sectionId);
        if (section.status != SectionStatus.Opened) revert TenderRegistryInvalidSectionStatus(sectionId, section.status);
        if (awardHash == bytes32(0)) revert TenderRegistryZeroValue("awardHash");
        if (section.attestations < section.witnessQuorum) {
            revert TenderRegistryNotWitnessed(sectionId, section.attestations, section.witnessQuorum);
        }
        if (section.pendingObjections != 0) revert TenderRegistryObjectionsPending(sectionId, section.pendingObjections);
        BidStatus status = _bidStatus(_bids[sectionId][winner]);
        if (status != BidStatus.Opened) revert TenderRegistryInvalidBidStatus(sectionId, winner, status);
        section.status = SectionStatus.Awarded;
        section.winner = winner;
        emit Awarded(sectionId, winner, awardHash);
    }

    /// @notice Record, as tenderer, that the winner signed the contract.
    function recordContractSigned(bytes32 sectionId, bytes32 contractHash) external {
        Section storage section = _awardedSectionOfTenderer(sectionId);
        if (contractHash == bytes32(0)) revert TenderRegistryZeroValue("contractHash");
        section.contractSigned = true;
        emit ContractSigned(sectionId, contractHash);
    }

    /// @notice Record, as tenderer, that the winner refused to sign the contract.
    function recordRefusalToSign(bytes32 sectionId, bytes32 evidenceHash) external {
        Section storage section = _awardedSectionOfTenderer(sectionId);
        if (evidenceHash == bytes32(0)) revert TenderRegistryZeroValue("evidenceHash");
        section.refusedToSign = true;
        emit RefusalToSignRecorded(sectionId, evidenceHash);
    }

    // ------------------------------------------------------------------ views

    /// @inheritdoc ITenderRegistry
    function deadlineOf(bytes32 sectionId) external view returns (uint64 openingTime, address tenderer) {
        Section storage section = _sections[sectionId];
        return (section.openingTime, section.tenderer);
    }

    /// @inheritdoc ITenderRegistry
    function bidCover(bytes32 sectionId, address bidder) external view returns (CoverKind kind, bytes32 cover) {
        Bid storage bid = _bids[sectionId][bidder];
        if (!bid.coverRevealed) return (CoverKind.Guarantee, bytes32(0));
        return (bid.coverKind, bid.cover);
    }

    /// @notice A bid's cover commitment and, once revealed, its cover (zero kind and cover until then).
    function coverOf(bytes32 sectionId, address bidder)
        external
        view
        returns (bytes32 commitment, bool revealed, CoverKind kind, bytes32 cover)
    {
        Bid storage bid = _bids[sectionId][bidder];
        return (bid.coverCommitment, bid.coverRevealed, bid.coverKind, bid.cover);
    }

    /// @notice The blinded cover commitment a bid carries: `keccak256(abi.encode(sectionId, bidder, kind,
    /// cover, salt))`. Binding the section and the bidder stops a commitment being replayed elsewhere.
    function coverCommitmentOf(bytes32 sectionId, address bidder, CoverKind kind, bytes32 cover, bytes32 salt)
        public
        pure
        returns (bytes32)
    {
        return keccak256(abi.encode(sectionId, bidder, kind, cover, salt));
    }

    /// @inheritdoc ITenderRegistry
    function claimGroundHolds(bytes32 sectionId, address bidder, ClaimGround ground) external view returns (bool) {
        BidStatus status = _bidStatus(_bids[sectionId][bidder]);
        if (ground == ClaimGround.WithdrawalAfterDeadline) return status == BidStatus.WithdrawnAfterDeadline;
        if (ground == ClaimGround.BidderCausedDecryptionFailure) return status == BidStatus.DecryptionFailedBidderCaused;
        if (ground == ClaimGround.WinnerRefusedToSign) {
            Section storage section = _sections[sectionId];
            return section.status == SectionStatus.Awarded && section.winner == bidder && section.refusedToSign;
        }
        return false;
    }

    /// @inheritdoc ITenderRegistry
    function bondReleasable(bytes32 sectionId, address bidder) external view returns (bool) {
        Section storage section = _sections[sectionId];
        BidStatus status = _bidStatus(_bids[sectionId][bidder]);
        if (status == BidStatus.None || status == BidStatus.Withdrawn || status == BidStatus.CoverRejected) return true;
        if (status == BidStatus.DecryptionFailedBidderCaused || status == BidStatus.WithdrawnAfterDeadline) return false;
        if (section.status == SectionStatus.FailedTender) return true;
        if (status == BidStatus.DecryptionFailedNotBidderCaused) return section.status != SectionStatus.Bidding;
        if (section.status != SectionStatus.Awarded) return false;
        if (section.winner != bidder) return true;
        return section.contractSigned;
    }

    /// @notice A tender as stored.
    function tenderOf(bytes32 tenderId) external view returns (Tender memory) {
        return _tenders[tenderId];
    }

    /// @notice A section as stored (all zero for an unknown id).
    function sectionOf(bytes32 sectionId) external view returns (Section memory) {
        return _sections[sectionId];
    }

    /// @notice The section's witnesses.
    function witnessesOf(bytes32 sectionId) external view returns (address[] memory) {
        return _witnesses[sectionId];
    }

    /// @notice Whether `witness` has attested the section's opening record.
    function hasAttested(bytes32 sectionId, address witness) external view returns (bool) {
        return _witnessState[sectionId][witness] == 2;
    }

    /// @notice The section's opening public key (empty until set).
    function openingKeyOf(bytes32 sectionId) external view returns (bytes memory) {
        return _openingKeys[sectionId];
    }

    /// @notice A bid's status, commitment, cover (zero until revealed) and announced-fields (or failure
    /// evidence) hash.
    function bidOf(bytes32 sectionId, address bidder)
        external
        view
        returns (BidStatus status, bytes32 ciphertextHash, CoverKind coverKind, bytes32 cover, bytes32 announcedHash)
    {
        Bid storage bid = _bids[sectionId][bidder];
        return (_bidStatus(bid), bid.ciphertextHash, bid.coverKind, bid.cover, bid.announcedHash);
    }

    /// @notice The tender documents' version a bid was made on or confirmed, and the section's current
    /// version: a live bid with `confirmedVersion < currentVersion` was not confirmed after the last
    /// amendment. It is still opened (唱标) and recorded as usual; the opening record and the hall mark it,
    /// and the evaluation committee decides on its responsiveness to the amended documents.
    function bidConfirmationOf(bytes32 sectionId, address bidder)
        external
        view
        returns (uint32 confirmedVersion, uint32 currentVersion)
    {
        Bid storage bid = _bids[sectionId][bidder];
        if (_bidStatus(bid) == BidStatus.None) return (0, _sections[sectionId].tenderVersion);
        // Cannot overflow: at most 2^32 - 2 amendments are counted (versions are uint32 from 1).
        unchecked {
            return (bid.confirmedAmendments + 1, _sections[sectionId].tenderVersion);
        }
    }

    /// @dev The amendments of the section's tender documents so far (its version is 1 as published).
    function _amendments(Section storage section) private view returns (uint32) {
        // Cannot underflow: a section's tenderVersion starts at 1 and only grows.
        unchecked {
            return section.tenderVersion - 1;
        }
    }

    /// @notice The ids of the tender's sections, in the order they were added.
    function sectionsOf(bytes32 tenderId) external view returns (bytes32[] memory) {
        return _tenderSections[tenderId];
    }

    /// @notice An objection and its answer (zero until answered).
    function objectionOf(bytes32 sectionId, uint256 objectionId) external view returns (Objection memory) {
        Objection memory objection = _objections[sectionId][objectionId];
        if (objection.bidder == address(0)) revert TenderRegistryUnknownObjection(sectionId, objectionId);
        return objection;
    }

    /// @notice The hash of the decryption shares `witness` published for the section (zero if none yet).
    function decryptionSharesOf(bytes32 sectionId, address witness) external view returns (bytes32) {
        return _decryptionShares[sectionId][witness];
    }

    /// @notice How many early-access attempts have been reported for the section.
    function earlyAccessAttemptsOf(bytes32 sectionId) external view returns (uint256) {
        return _earlyAccessAttempts[sectionId];
    }

    /// @notice Whether the witnesses' quorum has attested the section's opening record.
    function isWitnessed(bytes32 sectionId) external view returns (bool) {
        Section storage section = _sections[sectionId];
        return section.witnessQuorum != 0 && section.attestations >= section.witnessQuorum;
    }

    /// @notice The consortium whose members act here.
    function consortium() external view returns (address) {
        return address(_consortium);
    }

    /// @notice The guarantee registry bids rely on.
    function guaranteeRegistry() external view returns (address) {
        return address(_guaranteeRegistry);
    }

    // ------------------------------------------------------------------ internals

    function _bidStatus(Bid storage bid) private view returns (BidStatus) {
        if (bid.ciphertextHash == bytes32(0)) return BidStatus.None;
        BidStatus phase = bid.phase;
        return phase == BidStatus.None ? BidStatus.Committed : phase;
    }

    function _liveBid(bytes32 sectionId, address bidder, BidStatus required) private view returns (Bid storage bid) {
        bid = _bids[sectionId][bidder];
        BidStatus status = _bidStatus(bid);
        if (status != required) revert TenderRegistryInvalidBidStatus(sectionId, bidder, status);
    }

    function _existingSection(bytes32 sectionId) private view returns (Section storage section) {
        section = _sections[sectionId];
        if (section.status == SectionStatus.None) revert TenderRegistryUnknownSection(sectionId);
    }

    function _agencySection(bytes32 sectionId) private view returns (Section storage section) {
        section = _existingSection(sectionId);
        if (section.agency != msg.sender) revert TenderRegistryNotAgency(sectionId, msg.sender);
    }

    /// @dev A section whose opening is under way: agency caller, deadline passed, not yet closed.
    function _openingSection(bytes32 sectionId) private view returns (Section storage section) {
        section = _agencySection(sectionId);
        _checkAfterDeadline(sectionId, section);
        if (section.status != SectionStatus.Bidding) revert TenderRegistryInvalidSectionStatus(sectionId, section.status);
    }

    function _awardedSectionOfTenderer(bytes32 sectionId) private view returns (Section storage section) {
        section = _existingSection(sectionId);
        if (section.tenderer != msg.sender) revert TenderRegistryNotTenderer(sectionId, msg.sender);
        if (section.status != SectionStatus.Awarded) revert TenderRegistryInvalidSectionStatus(sectionId, section.status);
        if (section.contractSigned || section.refusedToSign) revert TenderRegistrySigningRecorded(sectionId);
    }

    function _checkBeforeDeadline(bytes32 sectionId, Section storage section) private view {
        uint256 openingTime = section.openingTime;
        if (openingTime == 0) revert TenderRegistryUnknownSection(sectionId);
        if (block.timestamp >= openingTime) revert TenderRegistryBidAfterDeadline(sectionId, openingTime, block.timestamp);
    }

    function _checkAfterDeadline(bytes32 sectionId, Section storage section) private view {
        uint256 openingTime = section.openingTime;
        if (block.timestamp < openingTime) revert TenderRegistryBeforeOpening(sectionId, openingTime, block.timestamp);
    }

    function _recordOpened(bytes32 sectionId, Section storage section, address bidder, bytes32 announcedHash) private {
        if (announcedHash == bytes32(0)) revert TenderRegistryZeroValue("announcedHash");
        Bid storage bid = _liveBid(sectionId, bidder, BidStatus.Committed);
        if (!bid.coverRevealed) revert TenderRegistryCoverNotRevealed(sectionId, bidder);
        bid.phase = BidStatus.Opened;
        bid.announcedHash = announcedHash;
        section.outcomes += 1;
        section.openedBids += 1;
        emit BidOpened(sectionId, bidder, announcedHash);
    }

    function _recordFailure(
        bytes32 sectionId,
        Section storage section,
        address bidder,
        bool bidderCaused,
        bytes32 evidenceHash
    ) private {
        if (evidenceHash == bytes32(0)) revert TenderRegistryZeroValue("evidenceHash");
        Bid storage bid = _liveBid(sectionId, bidder, BidStatus.Committed);
        bid.phase = bidderCaused ? BidStatus.DecryptionFailedBidderCaused : BidStatus.DecryptionFailedNotBidderCaused;
        bid.announcedHash = evidenceHash;
        section.outcomes += 1;
        emit BidDecryptionFailed(sectionId, bidder, bidderCaused, evidenceHash);
    }

    function _recordCoverRejected(bytes32 sectionId, Section storage section, address bidder, bytes32 evidenceHash)
        private
    {
        if (evidenceHash == bytes32(0)) revert TenderRegistryZeroValue("evidenceHash");
        Bid storage bid = _liveBid(sectionId, bidder, BidStatus.Committed);
        if (bid.coverRevealed) revert TenderRegistryCoverAlreadyRevealed(sectionId, bidder);
        bid.phase = BidStatus.CoverRejected;
        bid.announcedHash = evidenceHash;
        section.outcomes += 1;
        emit CoverRejected(sectionId, bidder, evidenceHash);
    }

    function _setOpeningKey(bytes32 sectionId, Section storage section, bytes calldata openingKey) private {
        uint256 length = openingKey.length;
        if (length == 0 || length > _MAX_OPENING_KEY_BYTES) revert TenderRegistryInvalidOpeningKey(length);
        _openingKeys[sectionId] = openingKey;
        section.hasOpeningKey = true;
        emit OpeningKeySet(sectionId, keccak256(openingKey));
    }
}
