// The live opening hall: follows the section's server-sent events (EventSource resumes after the last
// event id by itself) and shows the countdown, presence, the witnesses' progress, each 唱标 as it
// opens, the result (流标 or not), the record, responses and attestations. Text only (no HTML from data).

const hall = document.getElementById("hall");
const proofUrl = hall.dataset.proofUrl;
const openingTime = Number(hall.dataset.openingTime);
let clockOffset = Number(hall.dataset.chainNow) - Date.now() / 1000; // chain time minus local time
const STAGES = {
  waiting: "等待开标", started: "已到开标时间，等待见证机构解密", opening: "正在解密",
  closing: "开标记录上链中", closed: "开标结束",
};
const OUTCOMES = { opened: "已解密", revoked: "撤销", withdrawn: "撤回" };
const ATTESTATIONS = { verifying: "正在核验", attesting: "核验一致，见证上链中", attested: "已见证", mismatch: "核验不一致", failed: "失败" };

function el(tag, text, className) {
  const node = document.createElement(tag);
  if (text !== undefined) node.textContent = text;
  if (className) node.className = className;
  return node;
}

function proofLink(data) {
  if (!data.tx) return null;
  const link = el("a", `交易 ${data.tx.slice(0, 12)}…，区块 ${data.block}`);
  link.href = proofUrl.replace("{tx}", data.tx);
  link.className = "proof";
  return link;
}

function log(text, data) {
  const item = el("li", text);
  const link = data && proofLink(data);
  if (link) { item.append("（", link, "）"); }
  document.getElementById("log").append(item);
}

function setStage(stage) {
  const node = document.getElementById("stage");
  node.dataset.stage = stage;
  node.textContent = STAGES[stage] || stage;
}

function yuan(fen) {
  if (typeof fen !== "number") return "—";
  return `${Math.floor(fen / 100).toLocaleString("zh-CN")}.${String(fen % 100).padStart(2, "0")} 元`;
}

function beijing(seconds) {
  return new Date(seconds * 1000).toLocaleString("zh-CN", { timeZone: "Asia/Shanghai", hour12: false });
}

// How the bid stood against the amendments of the tender documents at the opening (the server's words).
function confirmationText(data) {
  if (data.confirmation_zh) return data.confirmation_zh;
  return data.tender_amendment === 0 ? "招标文件未修改" : "—";
}

function addBid(data, failed) {
  const row = el("tr", undefined, failed ? "failed announcement" : "announcement");
  row.dataset.address = data.address;
  if (data.confirmed === false) {
    row.classList.add("unconfirmed");
    row.dataset.confirmed = "0";
  }
  const announced = data.announced || {};
  const others = failed
    ? `${data.cause_zh}（${data.bidder_caused ? "投标人原因" : "非投标人原因"}）`
    : Object.entries(announced).filter(([k]) => k !== "price_fen" && k !== "duration_days").map(([k, v]) => `${k}：${v}`).join("，");
  for (const text of [data.bidder, data.outcome_zh || OUTCOMES[data.outcome], yuan(announced.price_fen),
    announced.duration_days !== undefined ? `${announced.duration_days} 日历天` : "—", others, confirmationText(data),
    data.anchored_hash.slice(0, 18) + "…"]) {
    row.append(el("td", text));
  }
  document.querySelector("#announcements tbody").append(row);
}

function answerForm(responseId) {
  if (hall.dataset.isAgency !== "1") return null;
  const form = el("form");
  form.method = "post";
  form.action = `/sections/${hall.dataset.sectionId}/responses/${responseId}/answer`;
  const token = el("input");
  token.type = "hidden"; token.name = "csrf_token";
  token.value = document.querySelector("meta[name=csrf-token]").content;
  const label = el("label", "答复");
  const text = el("textarea");
  text.name = "text"; text.rows = 2; text.required = true; text.maxLength = 5000;
  label.append(text);
  const button = el("button", "答复异议");
  button.type = "submit";
  form.append(token, label, button);
  return form;
}

const WRITES = { record_outcomes: "解密结果", close_opening: "开标记录哈希" }; // the writes the agency may retry

function showRetryForm() {
  if (hall.dataset.isAgency !== "1" || document.getElementById("retry-writes")) return;
  const form = el("form", "开标结果上链被拒绝，排除原因后请重新提交：", "error");
  form.id = "retry-writes";
  form.method = "post";
  form.action = `/sections/${hall.dataset.sectionId}/hall/retry`;
  const token = el("input");
  token.type = "hidden"; token.name = "csrf_token";
  token.value = document.querySelector("meta[name=csrf-token]").content;
  const button = el("button", "重新提交上链");
  button.type = "submit";
  form.append(token, button);
  document.getElementById("record-links").after(form);
}

const handlers = {
  started: (d) => {
    clockOffset = Math.max(clockOffset, d.chain_time - Date.now() / 1000);
    tick();
    setStage("started");
    log("已到开标时间，开标自动开始，等待见证机构上传解密份额");
  },
  batch_received: (d) => log(`${d.witness}（见证人 ${d.witness_index}）上传了解密份额（${d.shares} 份）`),
  batch_anchored: (d) => {
    document.getElementById("progress").textContent = `${d.anchored} / ${d.quorum}（共 ${d.witnesses} 家）`;
    log(`${d.witness} 的解密份额哈希已上链`, d);
  },
  opening: () => { setStage("opening"); log("见证机构解密份额达到门限，开始解密"); },
  announcement: (d) => {
    addBid(d, false);
    log(`唱标：${d.bidder} 投标报价 ${yuan((d.announced || {}).price_fen)}${d.confirmed === false ? "（" + d.confirmation_zh + "）" : ""}`);
  },
  bid_failed: (d) => { addBid(d, true); log(`${d.bidder} 的投标文件${d.outcome_zh}：${d.cause_zh}`); },
  faulty_share: (d) => log(`见证人 ${d.witness_index} 的一份解密份额无效：${d.reason}`),
  outcomes_anchored: (d) => log(`${d.count} 份投标的解密结果已上链`, d),
  record: (d) => {
    setStage("closing");
    document.getElementById("record-hash").textContent = d.record_hash;
    document.getElementById("record-links").hidden = false;
    log(`开标记录已生成，哈希 ${d.record_hash.slice(0, 18)}…`);
  },
  closed: (d) => {
    setStage("closed");
    const result = document.getElementById("result");
    result.dataset.result = d.result;
    if (d.result === "failed_tender") {
      result.textContent = `流标：有效投标 ${d.valid_bids} 份，少于最低 ${d.min_valid_bids} 份（由合约判定）`;
      result.className = "result failed";
    } else {
      result.textContent = `开标有效：有效投标 ${d.valid_bids} 份`;
    }
    if (d.window_ends_at) {
      document.getElementById("window-ends").textContent = `，截至 ${beijing(d.window_ends_at)}`;
    }
    log(`开标记录哈希已上链，${d.result === "failed_tender" ? "流标" : "开标结束"}`, d);
  },
  confirmation: (d) => { addResponse(d, "确认"); log(`${d.bidder} 确认开标记录`); },
  objection: (d) => { addResponse(d, "异议"); log(`${d.bidder} 提出异议`); },
  objection_anchored: (d) => log("异议哈希已上链", d),
  objection_numbered: (d) => {
    const item = document.querySelector(`#responses li[data-response-id="${d.response_id}"]`);
    if (!item || item.querySelector("form")) return; // the page was rendered with the form already
    const form = answerForm(d.response_id);
    if (form) item.append(form);
  },
  answer: (d) => { log(`招标代理机构答复了 ${d.bidder} 的异议：“${d.text}”`); },
  answer_anchored: (d) => log("答复哈希已上链", d),
  attestation: (d) => {
    const item = el("li", `${d.witness}：${ATTESTATIONS[d.status] || d.status}${d.detail ? "（" + d.detail + "）" : ""}`);
    const link = proofLink(d);
    if (link) item.append(" ", link);
    document.getElementById("attestations").append(item);
    log(`${d.witness} 见证：${ATTESTATIONS[d.status] || d.status}`, d);
  },
  opening_failed: (d) => log(`开标无法进行：${d.detail}（请招标代理机构处理）`),
  chain_write_failed: (d) => {
    log(`上链失败（${d.organisation}，${d.action}）：${d.error}`);
    if (d.action in WRITES) showRetryForm();
  },
  chain_write_retried: (d) => {
    document.getElementById("retry-writes")?.remove();
    log(`${d.organisation} 重新提交上链：${d.actions.map((a) => WRITES[a] || a).join("、")}`);
  },
};

function addResponse(d, label) {
  const list = document.getElementById("responses");
  if (list.querySelector(`li[data-response-id="${d.response_id}"]`)) return;
  const item = el("li", `${d.bidder}：${label} “${d.text}”`);
  item.dataset.responseId = d.response_id;
  list.append(item);
}

function tick() {
  const now = Date.now() / 1000 + clockOffset;
  const left = Math.max(0, Math.round(openingTime - now));
  const node = document.getElementById("countdown");
  if (left === 0) { node.textContent = "已到开标时间"; return; }
  const h = Math.floor(left / 3600), m = Math.floor((left % 3600) / 60), s = left % 60;
  node.textContent = `${h} 小时 ${m} 分 ${s} 秒`;
}

function connect() {
  const source = new EventSource(hall.dataset.eventsUrl);
  const status = document.getElementById("connection");
  source.onopen = () => { status.textContent = "已连接，实时更新"; status.className = "ok"; };
  source.onerror = () => { status.textContent = "连接中断，正在重连…"; status.className = "pending"; };
  source.addEventListener("presence", (message) => {
    const data = JSON.parse(message.data).data;
    document.getElementById("presence").textContent = data.bidders.length ? data.bidders.join("、") : "暂无";
  });
  for (const [kind, handle] of Object.entries(handlers)) {
    source.addEventListener(kind, (message) => {
      const event = JSON.parse(message.data);
      handle(event.data);
    });
  }
}

setStage(document.getElementById("stage").dataset.stage);
tick();
setInterval(tick, 1000);
connect();
