// SPDX-License-Identifier: Apache-2.0
pragma solidity 0.8.30;

/// @title Consortium
/// @notice The organisations that run the chain together and the roles each may play.
/// @dev A member is one account of one organisation; the organisation itself is known on chain only by
/// the hash of its identifier (for example its unified social credit code), never by name.
/// Every change to the membership needs the approval of `threshold` distinct admin members.
contract Consortium {
    /// @notice Roles are bits of a `uint256` mask so that one member can hold several.
    uint256 public constant ROLE_ADMIN = 1 << 0;
    uint256 public constant ROLE_TENDERER = 1 << 1;
    uint256 public constant ROLE_AGENCY = 1 << 2;
    uint256 public constant ROLE_BIDDER = 1 << 3;
    uint256 public constant ROLE_GUARANTOR = 1 << 4;
    uint256 public constant ROLE_WITNESS = 1 << 5;
    uint256 public constant ROLE_REGULATOR = 1 << 6;
    uint256 private constant _ALL_ROLES = (1 << 7) - 1;

    /// @notice What an approved proposal changes.
    enum ProposalKind {
        None,
        AddMember,
        RemoveMember,
        SetRoles,
        SetThreshold
    }

    struct Member {
        bytes32 orgId;
        uint256 roles;
    }

    struct Proposal {
        ProposalKind kind;
        bool executed;
        uint32 approvals; // counted when the proposal was last approved (frozen once executed)
        address account;
        bytes32 orgId;
        uint256 value; // roles for AddMember / SetRoles, the new threshold for SetThreshold
    }

    mapping(address account => Member) private _members;
    mapping(uint256 proposalId => Proposal) private _proposals;
    mapping(uint256 proposalId => mapping(address admin => bool)) private _approved;
    mapping(uint256 proposalId => address[]) private _approvers;
    uint256 private _proposalCount;
    uint256 private _adminCount;
    uint256 private _memberCount;
    uint256 private _threshold;

    /// @notice The caller lacks `role`.
    error ConsortiumUnauthorized(address account, uint256 role);
    /// @notice A zero address was given where an account is needed.
    error ConsortiumZeroAddress();
    /// @notice A zero organisation id was given.
    error ConsortiumZeroOrgId();
    /// @notice The account is already a member.
    error ConsortiumMemberExists(address account);
    /// @notice The account is not a member.
    error ConsortiumUnknownMember(address account);
    /// @notice The role mask is empty or has bits that name no role.
    error ConsortiumInvalidRoles(uint256 roles);
    /// @notice The threshold is below 2 or above the number of admins it would apply to.
    error ConsortiumInvalidThreshold(uint256 threshold, uint256 admins);
    /// @notice No proposal has this id.
    error ConsortiumUnknownProposal(uint256 proposalId);
    /// @notice The proposal has already been carried out.
    error ConsortiumProposalAlreadyExecuted(uint256 proposalId);
    /// @notice This admin has already approved the proposal.
    error ConsortiumAlreadyApproved(uint256 proposalId, address admin);
    /// @notice The same account was listed twice as an initial admin.
    error ConsortiumDuplicateAdmin(address account);
    /// @notice The founding lists (admins, organisation ids, roles) differ in length.
    error ConsortiumLengthMismatch(uint256 admins, uint256 orgIds, uint256 roles);

    /// @notice A membership change was proposed; the proposer's approval is counted at once.
    event ProposalCreated(
        uint256 indexed proposalId, ProposalKind kind, address indexed account, bytes32 orgId, uint256 value, address proposer
    );
    /// @notice An admin approved a proposal.
    event ProposalApproved(uint256 indexed proposalId, address indexed admin, uint256 approvals);
    /// @notice A proposal reached the threshold and was carried out.
    event ProposalExecuted(uint256 indexed proposalId);
    /// @notice An organisation's account joined the consortium.
    event MemberAdded(address indexed account, bytes32 indexed orgId, uint256 roles);
    /// @notice An account left the consortium.
    event MemberRemoved(address indexed account, bytes32 indexed orgId);
    /// @notice A member's roles changed.
    event RolesChanged(address indexed account, uint256 previousRoles, uint256 roles);
    /// @notice The number of admin approvals needed for a change was set.
    event ThresholdChanged(uint256 previousThreshold, uint256 threshold);

    modifier onlyRole(uint256 role) {
        _checkRole(msg.sender, role);
        _;
    }

    /// @notice Found the consortium with its admin members and the approval threshold.
    /// @param admins Initial admin accounts, one per founding organisation.
    /// @param adminOrgIds Hash of each admin organisation's identifier, in the same order.
    /// @param adminRoles Roles of each admin member; each must include `ROLE_ADMIN`.
    /// @param approvalThreshold Number of distinct admin approvals any later change needs (at least 2).
    constructor(address[] memory admins, bytes32[] memory adminOrgIds, uint256[] memory adminRoles, uint256 approvalThreshold) {
        if (admins.length != adminOrgIds.length || admins.length != adminRoles.length) {
            revert ConsortiumLengthMismatch(admins.length, adminOrgIds.length, adminRoles.length);
        }
        for (uint256 i = 0; i < admins.length; ++i) {
            address admin = admins[i];
            if (admin == address(0)) revert ConsortiumZeroAddress();
            if (adminOrgIds[i] == bytes32(0)) revert ConsortiumZeroOrgId();
            if (_members[admin].roles != 0) revert ConsortiumDuplicateAdmin(admin);
            _checkRoles(adminRoles[i]);
            if (adminRoles[i] & ROLE_ADMIN == 0) revert ConsortiumInvalidRoles(adminRoles[i]);
            _addMember(admin, adminOrgIds[i], adminRoles[i]);
        }
        _setThreshold(approvalThreshold, _adminCount);
    }

    /// @notice Propose that `account` of organisation `orgId` join with `roles`.
    /// @return proposalId The id other admins approve.
    function proposeAddMember(address account, bytes32 orgId, uint256 roles)
        external
        onlyRole(ROLE_ADMIN)
        returns (uint256 proposalId)
    {
        if (account == address(0)) revert ConsortiumZeroAddress();
        if (orgId == bytes32(0)) revert ConsortiumZeroOrgId();
        if (_members[account].roles != 0) revert ConsortiumMemberExists(account);
        _checkRoles(roles);
        return _propose(ProposalKind.AddMember, account, orgId, roles);
    }

    /// @notice Propose that `account` leave the consortium.
    /// @return proposalId The id other admins approve.
    function proposeRemoveMember(address account) external onlyRole(ROLE_ADMIN) returns (uint256 proposalId) {
        if (_members[account].roles == 0) revert ConsortiumUnknownMember(account);
        return _propose(ProposalKind.RemoveMember, account, _members[account].orgId, 0);
    }

    /// @notice Propose that member `account` hold exactly `roles` (grants and revokes in one).
    /// @return proposalId The id other admins approve.
    function proposeSetRoles(address account, uint256 roles) external onlyRole(ROLE_ADMIN) returns (uint256 proposalId) {
        if (_members[account].roles == 0) revert ConsortiumUnknownMember(account);
        _checkRoles(roles);
        return _propose(ProposalKind.SetRoles, account, _members[account].orgId, roles);
    }

    /// @notice Propose a new approval threshold.
    /// @return proposalId The id other admins approve.
    function proposeSetThreshold(uint256 newThreshold) external onlyRole(ROLE_ADMIN) returns (uint256 proposalId) {
        if (newThreshold < 2 || newThreshold > _adminCount) revert ConsortiumInvalidThreshold(newThreshold, _adminCount);
        return _propose(ProposalKind.SetThreshold, address(0), bytes32(0), newThreshold);
    }

    /// @notice Approve a pending proposal; the approval that reaches the threshold carries it out.
    function approve(uint256 proposalId) external onlyRole(ROLE_ADMIN) {
        Proposal storage pending = _proposals[proposalId];
        if (pending.kind == ProposalKind.None) revert ConsortiumUnknownProposal(proposalId);
        if (pending.executed) revert ConsortiumProposalAlreadyExecuted(proposalId);
        if (_approved[proposalId][msg.sender]) revert ConsortiumAlreadyApproved(proposalId, msg.sender);
        _approve(proposalId, pending);
    }

    /// @notice Whether `account` holds every bit of `role`.
    function hasRole(address account, uint256 role) external view returns (bool) {
        return role != 0 && _members[account].roles & role == role;
    }

    /// @notice The organisation id and roles of `account` (zero for a non-member).
    function memberOf(address account) external view returns (bytes32 orgId, uint256 roles) {
        Member storage member = _members[account];
        return (member.orgId, member.roles);
    }

    /// @notice The number of admin approvals a change needs.
    function threshold() external view returns (uint256) {
        return _threshold;
    }

    /// @notice The number of admin members.
    function adminCount() external view returns (uint256) {
        return _adminCount;
    }

    /// @notice The number of members.
    function memberCount() external view returns (uint256) {
        return _memberCount;
    }

    /// @notice The number of proposals made so far (ids run from 1).
    function proposalCount() external view returns (uint256) {
        return _proposalCount;
    }

    /// @notice A proposal as stored; `approvals` counts those of current admins while it is pending.
    function proposal(uint256 proposalId)
        external
        view
        returns (ProposalKind kind, bool executed, uint256 approvals, address account, bytes32 orgId, uint256 value)
    {
        Proposal storage p = _proposals[proposalId];
        if (p.kind == ProposalKind.None) revert ConsortiumUnknownProposal(proposalId);
        approvals = p.executed ? p.approvals : _adminApprovals(proposalId);
        return (p.kind, p.executed, approvals, p.account, p.orgId, p.value);
    }

    /// @notice Whether `admin` has approved `proposalId`.
    function hasApproved(uint256 proposalId, address admin) external view returns (bool) {
        return _approved[proposalId][admin];
    }

    function _propose(ProposalKind kind, address account, bytes32 orgId, uint256 value) private returns (uint256) {
        uint256 proposalId = ++_proposalCount;
        Proposal storage created = _proposals[proposalId];
        created.kind = kind;
        created.account = account;
        created.orgId = orgId;
        created.value = value;
        emit ProposalCreated(proposalId, kind, account, orgId, value, msg.sender);
        _approve(proposalId, created);
        return proposalId;
    }

    function _approve(uint256 proposalId, Proposal storage pending) private {
        _approved[proposalId][msg.sender] = true;
        _approvers[proposalId].push(msg.sender);
        uint32 approvals = _adminApprovals(proposalId);
        pending.approvals = approvals;
        emit ProposalApproved(proposalId, msg.sender, approvals);
        if (approvals >= _threshold) {
            _execute(proposalId, pending);
        }
    }

    /// @dev Conditions are checked again here: the membership may have changed since the pending.
    function _execute(uint256 proposalId, Proposal storage pending) private {
        address account = pending.account;
        ProposalKind kind = pending.kind;
        if (kind == ProposalKind.AddMember) {
            if (_members[account].roles != 0) revert ConsortiumMemberExists(account);
            _addMember(account, pending.orgId, pending.value);
            _checkAdminsStillReachThreshold();
        } else if (kind == ProposalKind.RemoveMember) {
            Member memory member = _members[account];
            if (member.roles == 0) revert ConsortiumUnknownMember(account);
            if (member.roles & ROLE_ADMIN != 0) _adminCount -= 1;
            _memberCount -= 1;
            delete _members[account];
            emit MemberRemoved(account, member.orgId);
            _checkAdminsStillReachThreshold();
        } else if (kind == ProposalKind.SetRoles) {
            uint256 previous = _members[account].roles;
            if (previous == 0) revert ConsortiumUnknownMember(account);
            uint256 roles = pending.value;
            if (previous & ROLE_ADMIN != 0) _adminCount -= 1;
            if (roles & ROLE_ADMIN != 0) _adminCount += 1;
            _members[account].roles = roles;
            emit RolesChanged(account, previous, roles);
            _checkAdminsStillReachThreshold();
        } else {
            _setThreshold(pending.value, _adminCount);
        }
        pending.executed = true;
        emit ProposalExecuted(proposalId);
    }

    /// @dev Only approvals of accounts that are admins now count: an admin removed (or stripped of the
    /// role) after approving no longer speaks for the consortium, so its pending approvals lapse.
    function _adminApprovals(uint256 proposalId) private view returns (uint32 count) {
        address[] storage approvers = _approvers[proposalId];
        uint256 length = approvers.length;
        for (uint256 i = 0; i < length; ++i) {
            if (_members[approvers[i]].roles & ROLE_ADMIN != 0) ++count;
        }
    }

    function _addMember(address account, bytes32 orgId, uint256 roles) private {
        _members[account] = Member({orgId: orgId, roles: roles});
        _memberCount += 1;
        if (roles & ROLE_ADMIN != 0) _adminCount += 1;
        emit MemberAdded(account, orgId, roles);
    }

    function _setThreshold(uint256 newThreshold, uint256 admins) private {
        if (newThreshold < 2 || newThreshold > admins) revert ConsortiumInvalidThreshold(newThreshold, admins);
        uint256 previous = _threshold;
        _threshold = newThreshold;
        emit ThresholdChanged(previous, newThreshold);
    }

    /// @dev A change that leaves fewer admins than the threshold would lock the consortium for good.
    function _checkAdminsStillReachThreshold() private view {
        if (_adminCount < _threshold) revert ConsortiumInvalidThreshold(_threshold, _adminCount);
    }

    function _checkRoles(uint256 roles) private pure {
        if (roles == 0 || roles & ~_ALL_ROLES != 0) revert ConsortiumInvalidRoles(roles);
    }

    function _checkRole(address account, uint256 role) private view {
        if (_members[account].roles & role != role) revert ConsortiumUnauthorized(account, role);
    }
}
