"""Named failures of the platform. Each carries a stable code (for the JSON API) and a message in Chinese
(for people); views turn them into an HTML page or `{"error": {"code", "message"}}` with `status`."""

from __future__ import annotations


class AppError(Exception):
    code = "error"
    status = 400
    message = "请求无法处理"

    def __init__(self, message: str | None = None, *, field: str | None = None) -> None:
        self.message = message or type(self).message
        self.field = field
        super().__init__(self.message)


class InvalidInput(AppError):
    code = "invalid_input"
    message = "输入有误"


class NotLoggedIn(AppError):
    code = "not_logged_in"
    status = 401
    message = "请先登录"


class LoginFailed(AppError):
    code = "login_failed"
    status = 401
    message = "用户名或密码错误"


class TooManyLoginAttempts(AppError):
    code = "too_many_login_attempts"
    status = 429
    message = "登录失败次数过多，请稍后再试"


class Forbidden(AppError):
    code = "forbidden"
    status = 403
    message = "您的机构无权执行此操作"


class NotFound(AppError):
    code = "not_found"
    status = 404
    message = "未找到该记录"


class TooLarge(AppError):
    code = "too_large"
    status = 413
    message = "上传的文件过大"


class UnsupportedFileType(AppError):
    code = "unsupported_file_type"
    message = "不支持的文件类型"


class AfterDeadline(AppError):
    code = "after_deadline"
    status = 409
    message = "已过投标截止时间（开标时间），不能再进行此操作"


class NotRegistered(AppError):
    code = "not_registered"
    status = 409
    message = "贵单位尚未报名该标段，请先报名"


class AlreadyRegistered(AppError):
    code = "already_registered"
    status = 409
    message = "贵单位已报名该标段"


class CommitmentMismatch(AppError):
    code = "commitment_mismatch"
    message = "密封投标文件的哈希与提交的承诺值不一致，文件可能在传输中损坏"


class BidStateConflict(AppError):
    code = "bid_state_conflict"
    status = 409
    message = "当前投标状态不允许此操作"


class ChainUnavailable(AppError):
    code = "chain_unavailable"
    status = 503
    message = "区块链节点暂不可用，请稍后再试"


class DuplicateSubmission(AppError):
    """Raised internally when an idempotency key was seen before; views answer with the first result."""

    code = "duplicate_submission"
    status = 409
    message = "该表单已提交过"
