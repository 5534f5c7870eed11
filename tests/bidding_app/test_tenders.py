"""Publishing tenders through the pages: on chain through the outbox, bad input, amendments, attachments."""

from __future__ import annotations

import io
from typing import Any

import sqlalchemy as sa

from bidding_app.db import db
from bidding_app.models import Attachment, OutboxEntry, Section, Tender
from contracts.records import Role, SectionStatus
from tests.bidding_app.conftest import Clients, api_draft, csrf_of, opening_key, section_form
from tests.bidding_app.test_bids import api_client
from tests.helpers import Platform


def publish(clients: Clients, platform: Platform, **overrides: object) -> tuple[int, object]:
    agency = clients.logged_in(Role.AGENCY)
    form = section_form(clients, platform, **overrides)  # type: ignore[arg-type]
    form["csrf_token"] = csrf_of(agency, "/tenders/new")
    response = agency.post("/tenders/new", data=form, content_type="multipart/form-data")
    return response.status_code, response


def only_tender(clients: Clients) -> Tender:
    with clients.app.app_context():
        return db.session.scalars(sa.select(Tender)).one()


def test_agency_publishes_a_tender_and_it_lands_on_chain(clients: Clients, platform: Platform) -> None:
    status, _response = publish(clients, platform)
    assert status == 302
    assert clients.drain() == 2
    with clients.app.app_context():
        tender = db.session.scalars(sa.select(Tender)).one()
        section = db.session.scalars(sa.select(Section)).one()
        assert tender.chain_tx and tender.chain_block is not None
        assert section.chain_tx and section.chain_block is not None
        on_chain = platform.tenders.section(bytes.fromhex(section.chain_id[2:]))
        assert on_chain.status == SectionStatus.BIDDING
        assert on_chain.bid_bond == 80_000_000
        assert on_chain.opening_time == section.opening_time
        entries = db.session.scalars(sa.select(OutboxEntry)).all()
        assert {e.status for e in entries} == {"confirmed"}
    page = clients.logged_in(Role.BIDDER).get(f"/tenders/{tender.id}").get_data(as_text=True)
    assert "市政道路改造工程施工招标" in page and "800,000.00 元" in page and "已上链" in page


def test_double_submitted_form_creates_one_tender(clients: Clients, platform: Platform) -> None:
    agency = clients.logged_in(Role.AGENCY)
    form = section_form(clients, platform)
    form["csrf_token"] = csrf_of(agency, "/tenders/new")
    first = agency.post("/tenders/new", data=form)
    second = agency.post("/tenders/new", data=form)
    assert first.headers["Location"] == second.headers["Location"]
    with clients.app.app_context():
        assert db.session.scalar(sa.select(sa.func.count(Tender.id))) == 1
        assert db.session.scalar(sa.select(sa.func.count(OutboxEntry.id))) == 2


def test_bad_tender_input_gets_a_specific_message_and_stores_nothing(clients: Clients, platform: Platform) -> None:
    cases: dict[str, dict[str, Any]] = {
        "请填写项目名称": {"title": "  "},
        "投标保证金必须是金额": {"s0_bond": "八十万"},
        "开标时间必须晚于当前时间": {"s0_opening": "2001-01-01T09:00"},
        "请正确填写第1标段的开标时间": {"s0_opening": "明天上午"},
        "见证法定人数必须在 1 到 3 之间": {"s0_quorum": "4"},
        "开标公钥必须是十六进制": {"s0_opening_key": "not-hex"},
        "开标公钥无效": {"s0_opening_key": "0x02" + "ab" * 32},
        "开标公钥是 2/2 门限的，与本标段的见证设置 2/3 不一致": {"s0_opening_key": opening_key(2, 2)},
        "请为第1标段选择见证机构": {"s0_witnesses": []},
        "所选招标人不是联盟中的招标人": {"tenderer_id": str(clients.organisation(Role.BIDDER).id)},
        "项目名称不能超过200个字符": {"title": "长" * 201},
    }
    for expected, change in cases.items():
        status, response = publish(clients, platform, **change)
        assert status == 400, expected
        assert expected in response.get_data(as_text=True), expected  # type: ignore[attr-defined]
    with clients.app.app_context():
        assert db.session.scalar(sa.select(sa.func.count(Tender.id))) == 0
        assert db.session.scalar(sa.select(sa.func.count(OutboxEntry.id))) == 0


def test_script_and_sql_in_titles_are_stored_as_text_and_escaped(clients: Clients, platform: Platform) -> None:
    title = "<script>alert('x')</script>'; DROP TABLE tender; --"
    status, _ = publish(clients, platform, title=title)
    assert status == 302
    tender = only_tender(clients)
    assert tender.title == title
    page = clients.logged_in(Role.BIDDER).get(f"/tenders/{tender.id}").get_data(as_text=True)
    assert "<script>alert" not in page
    assert "&lt;script&gt;alert(&#39;x&#39;)&lt;/script&gt;" in page


def test_missing_csrf_token_is_refused(clients: Clients, platform: Platform) -> None:
    agency = clients.logged_in(Role.AGENCY)
    response = agency.post("/tenders/new", data=section_form(clients, platform))
    assert response.status_code == 400
    assert "安全令牌" in response.get_data(as_text=True)


def test_attachments_keep_safe_names_and_types(clients: Clients, platform: Platform) -> None:
    publish(clients, platform)
    tender = only_tender(clients)
    agency = clients.logged_in(Role.AGENCY)
    token = csrf_of(agency, f"/tenders/{tender.id}")

    def attach(name: str, content: bytes) -> tuple[int, str]:
        response = agency.post(f"/tenders/{tender.id}/attachments",
                               data={"csrf_token": token, "file": (io.BytesIO(content), name)})
        return response.status_code, response.get_data(as_text=True)

    assert attach("../../../etc/passwd.pdf", b"%PDF-1.7 tender documents")[0] == 302
    status, page = attach("招标文件.exe", b"MZ...")
    assert status == 400 and "不支持的文件类型" in page
    status, page = attach("假文件.pdf", b"not a pdf")
    assert status == 400 and "文件内容与扩展名" in page
    with clients.app.app_context():
        stored = db.session.scalars(sa.select(Attachment)).one()
        assert stored.original_name == "passwd.pdf"
        assert "/" not in stored.stored_name and stored.stored_name.endswith(".pdf")
        assert db.session.get_one(Tender, tender.id).version == 2  # adding a document is an amendment
    download = clients.logged_in(Role.BIDDER).get(f"/attachments/{stored.id}")
    assert download.status_code == 200 and download.data == b"%PDF-1.7 tender documents"
    download.close()


def test_oversized_attachment_is_refused(clients: Clients, platform: Platform) -> None:
    publish(clients, platform)
    tender = only_tender(clients)
    clients.app.config["MAX_ATTACHMENT_BYTES"] = 1024
    agency = clients.logged_in(Role.AGENCY)
    response = agency.post(f"/tenders/{tender.id}/attachments", data={
        "csrf_token": csrf_of(agency, f"/tenders/{tender.id}"), "file": (io.BytesIO(b"%PDF-" + b"0" * 4096), "a.pdf")})
    assert response.status_code == 413 and "附件不能超过" in response.get_data(as_text=True)


def test_agency_sets_the_response_window_per_section(clients: Clients, platform: Platform) -> None:
    """The form's field (minutes, the platform's window as default) and the API's `response_window_minutes`;
    out-of-range or malformed values are refused by name and nothing is stored."""
    agency = clients.logged_in(Role.AGENCY)
    form_page = agency.get("/tenders/new").get_data(as_text=True)
    assert 'name="s0_response_minutes" type="number" min="5" max="1440" value="30"' in form_page
    for value, expected in (("2", "第1标段的开标记录确认与异议期限须在 5 分钟到 1440 分钟（24 小时）之间"),
                            ("1441", "须在 5 分钟到 1440 分钟"),
                            ("半小时", "开标记录确认与异议期限（分钟）必须是整数")):
        status, response = publish(clients, platform, s0_response_minutes=value)
        assert status == 400 and expected in response.get_data(as_text=True), value  # type: ignore[attr-defined]
    assert publish(clients, platform, s0_response_minutes="45")[0] == 302

    client, token = clients.app.test_client(), api_client(clients, Role.AGENCY)
    bad: list[tuple[object, str]] = [(4, "须在 5 分钟到 1440 分钟"), (24 * 60 + 1, "须在 5 分钟到 1440 分钟"),
                                     (12.5, "必须是整数"), (True, "必须是整数"), ("十", "必须是整数")]
    for minutes, message in bad:
        draft = api_draft(clients, platform)
        draft["sections"][0]["response_window_minutes"] = minutes
        refused = client.post("/api/v1/tenders", json=draft, headers=token)
        assert refused.status_code == 400 and refused.json is not None, minutes
        error = refused.json["error"]
        assert (error["code"], error["field"]) == ("invalid_input", "response_window_minutes") and message in error[
            "message"], minutes
    with clients.app.app_context():
        assert db.session.scalar(sa.select(sa.func.count(Tender.id))) == 1  # only the form's 45 minutes

    chosen = api_draft(clients, platform)
    chosen["sections"][0]["response_window_minutes"] = 10
    chosen["sections"].append(dict(api_draft(clients, platform)["sections"][0], title="第二标段"))  # no window given
    created = client.post("/api/v1/tenders", json=chosen, headers=token)
    assert created.status_code == 201 and created.json is not None
    assert [s["response_window"] for s in created.json["sections"]] == [600, 1800]  # 1800: HALL_RESPONSE_WINDOW
    with clients.app.app_context():
        windows = db.session.scalars(sa.select(Section.response_window).order_by(Section.id)).all()
    assert windows == [2700, 600, 1800]


def test_migration_gives_existing_sections_the_configured_window(empty_database_url: str) -> None:
    """Sections published before the window could be chosen get the running platform's window."""
    from bidding_app.migrate import upgrade

    engine = sa.create_engine(empty_database_url)
    try:
        upgrade(engine, "0008_amendments")
        with engine.begin() as connection:
            connection.execute(sa.text(
                "INSERT INTO organisation (id, name, identifier, roles, created_at) VALUES (1, '代理', 'X1', 8, 0)"))
            connection.execute(sa.text(
                "INSERT INTO tender (id, number, chain_id, title, description, agency_id, tenderer_id, details_hash,"
                " version, submission_key, created_at) VALUES (1, 'JZ1', '0x01', 't', '', 1, 1, '0x', 1, 'k', 0)"))
            connection.execute(sa.text(
                "INSERT INTO section (id, tender_id, position, chain_id, title, opening_time, bid_bond,"
                " bid_validity_period, min_valid_bids, witness_quorum, opening_key)"
                " VALUES (1, 1, 1, '0x02', 's', 0, 1, 1, 1, 1, '0x')"))
        upgrade(engine, response_window=900)
        with engine.connect() as connection:
            assert connection.execute(sa.text("SELECT response_window FROM section")).scalars().all() == [900]
    finally:
        engine.dispose()
