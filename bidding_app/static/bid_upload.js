// Seal the bid in the browser with the opening module (opening/static/sealing.js), then upload only
// the sealed envelope, as the raw body, with its SHA-256 commitment in a header. The document and the
// announced fields (唱标: price, duration, quality) never leave the browser unencrypted.
import { commitmentOf, sealBid } from "/opening/sealing.js";

const form = document.getElementById("bid-form");
const progress = document.getElementById("bid-progress");

function show(text, isError) {
  progress.hidden = false;
  progress.textContent = text;
  progress.className = isError ? "error" : "pending";
}

function bytesFromHex(hex) {
  const digits = hex.replace(/^0x/, "");
  const out = new Uint8Array(digits.length / 2);
  for (let i = 0; i < out.length; i++) out[i] = parseInt(digits.substr(i * 2, 2), 16);
  return out;
}

function hex(bytes) {
  return Array.from(bytes, (b) => b.toString(16).padStart(2, "0")).join("");
}

// A random id of this browser, kept in localStorage and sent with every upload: the regulator's
// same-device signal between bidders (bidding_app/oversight.py). It identifies the browser, not a person.
function deviceId() {
  let id = null;
  try { id = window.localStorage.getItem("jz-device-id"); } catch (_) { /* storage disabled */ }
  if (!id || !/^[A-Za-z0-9-]{16,64}$/.test(id)) {
    id = hex(crypto.getRandomValues(new Uint8Array(16)));
    try { window.localStorage.setItem("jz-device-id", id); } catch (_) { /* sent once, not kept */ }
  }
  return id;
}

function fen(yuan) {
  const match = /^(\d{1,13})(?:\.(\d{1,2}))?$/.exec(yuan.trim().replace(/,/g, ""));
  if (!match) return null;
  return Number(match[1]) * 100 + Number(((match[2] || "") + "00").slice(0, 2));
}

function announcedFields() {
  const price = fen(document.getElementById("price").value);
  if (price === null) throw new Error("请正确填写投标报价（元，最多两位小数）");
  const days = Number(document.getElementById("duration").value);
  if (!Number.isSafeInteger(days) || days <= 0) throw new Error("请正确填写工期（日历天）");
  const quality = document.getElementById("quality").value.trim();
  if (!quality || quality.length > 200) throw new Error("请填写质量标准（不超过200字）");
  return { price_fen: price, duration_days: days, quality: quality };
}

if (form) {
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    const file = document.getElementById("bid-file").files[0];
    if (!file) { show("请选择投标文件", true); return; }
    try {
      const announced = announcedFields();
      show("正在浏览器中密封投标文件…", false);
      const envelope = await sealBid({
        sectionId: bytesFromHex(form.dataset.section),
        openingKey: bytesFromHex(form.dataset.openingKey),
        bidder: form.dataset.bidder,
        announced: announced,
        document: new Uint8Array(await file.arrayBuffer()),
        documentName: file.name,
      });
      if (envelope.byteLength > Number(form.dataset.maxBytes)) { show("密封后的文件超过大小限制", true); return; }
      const commitment = "0x" + hex(await commitmentOf(envelope));
      const data = new FormData(form);
      const headers = {
        "Accept": "application/json",
        "Content-Type": "application/octet-stream",
        "X-CSRFToken": data.get("csrf_token"),
        "X-Commitment": commitment,
        "X-Submission-Key": data.get("submission_key"),
        "X-Device-Id": deviceId(),
      };
      for (const [name, header] of [["cover_kind", "X-Cover-Kind"], ["cover_ref", "X-Cover-Ref"],
                                    ["guarantee_salt", "X-Guarantee-Salt"]]) {
        if (data.get(name)) headers[header] = encodeURIComponent(data.get(name));
      }
      show("正在递交密封文件（承诺值 " + commitment.slice(0, 18) + "…）", false);
      const response = await fetch(form.action, { method: "PUT", body: envelope, credentials: "same-origin", headers });
      const answer = await response.json();
      if (!response.ok) { show(answer.error ? answer.error.message : "递交失败", true); return; }
      window.location.assign(answer.receipt_url);
    } catch (error) {
      show("密封或递交失败：" + (error.message || error), true);
    }
  });
  // Enabled only now: a click before the sealing module has loaded would post the form unsealed.
  document.getElementById("seal-and-upload").disabled = false;
}
