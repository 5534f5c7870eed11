// Verify a chain_node proof bundle (jz_getProof) in the browser, so that a witness need not trust the
// platform's server: the same checks as `python -m chain_node verify` (chain_node/proofs.py), with
// keccak, RLP and secp256k1 recovery from the pinned `ethers` package's browser bundle (served by the
// platform from node_modules at /witness/ethers.js, no CDN).
//
//   1. keccak(header) is the bundle's block hash;
//   2. the receipt is in the block: the Merkle proof walks from the header's receipts root, by the key
//      rlp(transactionIndex), to exactly this receipt, every hashed node used in order;
//   3. the block is final: every commit seal recovers, over keccak("jianzheng commit seal" ‖ block
//      hash), to its validator, a member of the validator set, no signer twice, at least ⌈2n/3⌉ seals;
//   4. the receipt's status and events, decoded with the contracts' ABI.
import {
  Interface, concat, decodeRlp, encodeRlp, getBytes, hexlify, keccak256, recoverAddress, toBeArray, toUtf8Bytes,
} from "/witness/ethers.js";

const SEAL_DOMAIN = toUtf8Bytes("jianzheng commit seal");

export class ProofFailure extends Error {
  constructor(step, message) {
    super(message);
    this.step = step;
  }
}

function field(bundle, name) {
  if (!(name in bundle)) throw new ProofFailure("bundle", "证明包不完整：缺少字段 " + name);
  return bundle[name];
}

function hexField(value, name) {
  if (typeof value !== "string" || !/^0x([0-9a-fA-F]{2})*$/.test(value)) {
    throw new ProofFailure("bundle", "证明包字段 " + name + " 不是 0x 开头的十六进制数据");
  }
  return value.toLowerCase();
}

function nibbles(hex) {
  const out = [];
  for (const byte of getBytes(hex)) out.push(byte >> 4, byte & 0x0f);
  return out;
}

function hexPrefix(encoded) {
  const path = nibbles(encoded);
  if (!path.length || path[0] > 3) throw new ProofFailure("receipt", "收据树节点的路径编码无效");
  const leaf = path[0] >= 2;
  if (path[0] % 2) return [path.slice(1), leaf];
  if (path[1] !== 0) throw new ProofFailure("receipt", "收据树节点路径的填充半字节不为零");
  return [path.slice(2), leaf];
}

// The value under `key` in the trie with root `root`, as the proof nodes show it (chain_node.trie.verify_proof).
export function verifyTrieProof(root, key, proof) {
  if (!proof.length) throw new ProofFailure("receipt", "收据证明为空");
  const lookup = new Map(proof.map((node) => [keccak256(node), node]));
  if (keccak256(proof[0]) !== root) {
    throw new ProofFailure("receipt", "第一个证明节点的哈希与区块头中的收据树根 " + root + " 不一致");
  }
  const path = nibbles(key);
  const used = [];
  let position = 0;
  let reference = root;
  let depth = 0;
  let value = null;
  while (value === null) {
    let node;
    if (typeof reference === "string") {
      if (getBytes(reference).length !== 32) {
        throw new ProofFailure("receipt", "深度 " + depth + " 的节点引用不是 32 字节哈希");
      }
      const encoded = lookup.get(reference);
      if (encoded === undefined) {
        throw new ProofFailure("receipt", "没有哈希为 " + reference + " 的证明节点（深度 " + depth + "）：证明节点被改动或缺失");
      }
      used.push(encoded);
      try { node = decodeRlp(encoded); } catch (error) {
        throw new ProofFailure("receipt", "深度 " + depth + " 的证明节点不是有效的 RLP");
      }
    } else {
      node = reference;
    }
    depth += 1;
    if (!Array.isArray(node)) throw new ProofFailure("receipt", "深度 " + depth + " 的收据树节点不是列表");
    if (node.length === 17) {
      if (position === path.length) {
        if (typeof node[16] !== "string" || node[16] === "0x") throw new ProofFailure("receipt", "收据树中没有该交易的收据");
        value = node[16];
        break;
      }
      const child = node[path[position]];
      position += 1;
      if (child === "0x") throw new ProofFailure("receipt", "收据树中没有该交易的收据（分支为空）");
      reference = child;
    } else if (node.length === 2) {
      const [segment, leaf] = hexPrefix(node[0]);
      const part = path.slice(position, position + segment.length);
      if (part.length !== segment.length || part.some((n, i) => n !== segment[i])) {
        throw new ProofFailure("receipt", "收据树中没有该交易的收据：路径在第 " + position + " 个半字节处分叉");
      }
      position += segment.length;
      if (leaf) {
        if (position !== path.length) throw new ProofFailure("receipt", "收据树中没有该交易的收据：叶节点提前结束");
        value = node[1];
      } else {
        reference = node[1];
      }
    } else {
      throw new ProofFailure("receipt", "收据树节点有 " + node.length + " 项（应为 2 或 17）");
    }
  }
  const expected = [proof[0], ...proof.slice(1).filter((node) => getBytes(node).length >= 32)];
  if (used.length !== expected.length || used.some((node, i) => node !== expected[i])) {
    throw new ProofFailure("receipt", "证明节点与到该收据的路径不符（多余、缺少或顺序不对）");
  }
  return value;
}

// Every seal checked; the first failing one is the failure, as chain_node.consensus.check_commit_seals.
export function checkSeals(blockHash, seals, validators) {
  const members = new Set(validators.map((v) => v.toLowerCase()));
  const quorum = Math.ceil((2 * members.size) / 3);
  const digest = keccak256(concat([SEAL_DOMAIN, blockHash]));
  const seen = new Set();
  const rows = [];
  let failure = null;
  seals.forEach((seal, position) => {
    const claimed = hexField(seal.validator, "commitSeals.validator");
    const signature = hexField(seal.signature, "commitSeals.signature");
    let recovered = "";
    try { recovered = recoverAddress(digest, signature).toLowerCase(); } catch (error) { recovered = ""; }
    const inSet = members.has(claimed);
    const duplicate = seen.has(claimed);
    seen.add(claimed);
    const valid = inSet && !duplicate && recovered === claimed;
    rows.push({ validator: claimed, recovered, inSet, valid });
    if (!valid && failure === null) {
      if (!inSet) failure = "提交签名 " + (position + 1) + "：" + claimed + " 不在共识节点集合中";
      else if (duplicate) failure = "提交签名 " + (position + 1) + "：" + claimed + " 重复签名";
      else failure = "提交签名 " + (position + 1) + "：" + claimed + " 的签名不是对该区块的签名（恢复出 " + (recovered || "无") + "）";
    }
  });
  if (failure === null && seen.size < quorum) failure = "有效提交签名 " + seen.size + " 个，少于法定数 " + quorum;
  return { rows, quorum, failure };
}

function decodeReceipt(receipt) {
  const bytes = getBytes(receipt);
  const payload = bytes.length && bytes[0] < 0x7f ? bytes.slice(1) : bytes;
  const [status, , , logs] = decodeRlp(payload);
  return { status: status === "0x01" ? 1 : 0, logs: logs.map(([address, topics, data]) => ({ address, topics, data })) };
}

// Check a bundle against a validator set; returns what it proved, or throws ProofFailure saying which check failed.
export function verifyBundle(bundle, validators) {
  const header = hexField(field(bundle, "header"), "header");
  const blockHash = hexField(field(bundle, "blockHash"), "blockHash");
  const receipt = hexField(field(bundle, "receipt"), "receipt");
  const proof = field(bundle, "receiptProof").map((node) => hexField(node, "receiptProof"));
  const indexText = field(bundle, "transactionIndex");
  if (typeof indexText !== "string" || !/^0x[0-9a-fA-F]{1,8}$/.test(indexText)) {
    throw new ProofFailure("bundle", "证明包字段 transactionIndex 不是 0x 开头的十六进制数");
  }
  const index = Number.parseInt(indexText, 16);
  const seals = field(bundle, "commitSeals");
  if (keccak256(header) !== blockHash) {
    throw new ProofFailure("header", "区块头的哈希 " + keccak256(header) + " 与证明包中的区块哈希 " + blockHash + " 不一致（区块头或区块哈希被改动）");
  }
  let fields;
  try { fields = decodeRlp(header); } catch (error) { throw new ProofFailure("header", "区块头不是有效的 RLP"); }
  if (!Array.isArray(fields) || fields.length !== 12) throw new ProofFailure("header", "区块头应为 12 个字段的 RLP 列表");
  const receiptsRoot = fields[5];
  const key = encodeRlp(hexlify(toBeArray(index)));
  const proven = verifyTrieProof(receiptsRoot, key, proof);
  if (proven !== receipt) {
    throw new ProofFailure("receipt", "收据与收据树中第 " + index + " 笔交易位置上的收据不一致（收据被改动）");
  }
  const sealCheck = checkSeals(blockHash, seals, validators);
  if (sealCheck.failure) {
    const failure = new ProofFailure("seals", "区块未被证明为最终确认：" + sealCheck.failure);
    failure.seals = sealCheck;
    throw failure;
  }
  const decoded = decodeReceipt(receipt);
  return {
    blockNumber: Number.parseInt(fields[1] === "0x" ? "0" : fields[1], 16),
    blockHash,
    receiptsRoot,
    seals: sealCheck,
    status: decoded.status,
    logs: decoded.logs,
  };
}

// ------------------------------------------------------------------------------------- the proof page

function jsonOf(id) {
  const element = document.getElementById(id);
  return element ? JSON.parse(element.textContent) : null;
}

function cell(row, text, className) {
  const td = document.createElement("td");
  td.textContent = text;
  if (className) td.className = className;
  row.appendChild(td);
}

function describeLogs(logs, abi, contracts) {
  const iface = new Interface(abi);
  return logs.map((log) => {
    const contract = contracts[log.address.toLowerCase()] || log.address;
    try {
      const parsed = iface.parseLog({ topics: log.topics, data: log.data });
      const args = parsed.fragment.inputs.map((input, i) => input.name + "=" + String(parsed.args[i]));
      return contract + "." + parsed.name + "(" + args.join(", ") + ")";
    } catch (error) {
      return contract + "：无法解码的事件 " + log.topics[0];
    }
  });
}

function show(bundle, validators, source) {
  const verdict = document.getElementById("verify-verdict");
  const sealsBody = document.querySelector("#verify-seals tbody");
  const events = document.getElementById("verify-events");
  sealsBody.replaceChildren();
  events.replaceChildren();
  document.getElementById("verify-validators-source").textContent = source;
  let result = null;
  let failure = null;
  try {
    result = verifyBundle(bundle, validators);
  } catch (error) {
    failure = error instanceof ProofFailure ? error : new ProofFailure("bundle", "证明包无法解析：" + (error.message || error));
  }
  const seals = result ? result.seals : failure.seals;
  if (seals) {
    seals.rows.forEach((seal, i) => {
      const row = document.createElement("tr");
      row.dataset.valid = seal.valid ? "yes" : "no";
      cell(row, String(i + 1));
      cell(row, seal.validator, "mono");
      cell(row, seal.recovered || "（无法恢复）", "mono");
      cell(row, seal.valid ? "有效" : "无效", seal.valid ? "ok" : "error");
      sealsBody.appendChild(row);
    });
  }
  if (failure) {
    verdict.dataset.result = "failed";
    verdict.dataset.step = failure.step;
    verdict.className = "error";
    verdict.textContent = "校验失败：" + failure.message;
    return;
  }
  verdict.dataset.result = "ok";
  verdict.className = "ok";
  verdict.textContent = "校验通过：该交易的收据在区块 " + result.blockNumber + "（" + result.blockHash + "）中，" +
    "该区块有 " + result.seals.rows.length + " 个有效提交签名，达到法定数 " + result.seals.quorum + "，已最终确认。" +
    (result.status === 1 ? "" : "注意：该交易执行失败（状态 0）。");
  for (const line of describeLogs(result.logs, jsonOf("event-abi"), jsonOf("contract-names"))) {
    const item = document.createElement("li");
    item.className = "mono";
    item.textContent = line;
    events.appendChild(item);
  }
}

async function readJsonFile(input) {
  const file = input.files[0];
  return file ? JSON.parse(await file.text()) : null;
}

const page = document.getElementById("proof-page");
if (page) {
  let bundle = jsonOf("proof-bundle");
  let validatorFile = jsonOf("validator-file");
  let source = "平台提供的该区块共识节点集合（可改用联盟公布的 validators.json）";
  const rerun = () => show(bundle, validatorFile.validators || [], source);
  document.getElementById("own-validators").addEventListener("change", async (event) => {
    try {
      validatorFile = await readJsonFile(event.target);
      source = "您选择的文件 " + event.target.files[0].name;
    } catch (error) {
      document.getElementById("verify-verdict").textContent = "共识节点集合文件不是有效的 JSON";
      return;
    }
    rerun();
  });
  document.getElementById("own-bundle").addEventListener("change", async (event) => {
    try {
      bundle = await readJsonFile(event.target);
    } catch (error) {
      const verdict = document.getElementById("verify-verdict");
      verdict.dataset.result = "failed";
      verdict.textContent = "证明包文件不是有效的 JSON";
      return;
    }
    rerun();
  });
  rerun();
}
