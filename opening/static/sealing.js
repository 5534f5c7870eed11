// Sealing a bid in the browser with WebCrypto alone (no JS crypto library): the envelope format of
// opening/envelope.py, byte for byte (see opening/README.md, "Envelope format"). The bid document and
// its announced fields never leave the browser unencrypted; the platform receives the envelope and
// the bidder commits SHA-256(envelope) on chain before the deadline.
//
//   import { sealBid, commitmentOf } from "/static/opening/sealing.js";
//   const envelope = await sealBid({ sectionId, openingKey, bidder, announced, document, documentName });
//   const commitment = await commitmentOf(envelope);   // the ciphertextHash for TenderRegistry.commitBid

const MAGIC = new TextEncoder().encode("JZSEAL");
const VERSION = 1;
const FLAG_BIDDER_WRAP = 0x01;
const WRAP_INFO = new TextEncoder().encode("jianzheng/sealed-bid/v1/wrap");
const ROLE_OPENING = 1;
const ROLE_BIDDER = 2;
const OPENING_KEY_VERSION = 1;
const PLAINTEXT_FORMAT = "jianzheng/bid/v1";
const ZERO_NONCE = new Uint8Array(12);
const CURVE = { name: "ECDH", namedCurve: "P-256" };

// P-256 field prime and curve constant b (a = -3), to decompress the anchored public key: browsers
// import only uncompressed raw keys reliably.
const FIELD = BigInt("0xffffffff00000001000000000000000000000000ffffffffffffffffffffffff");
const CURVE_B = BigInt("0x5ac635d8aa3a93e7b3ebbd55769886bc651d06b0cc53b0f63bce3c3e27d2604b");

export class SealingError extends Error {
  constructor(message) {
    super(message);
    this.name = "SealingError";
  }
}

function concat(...parts) {
  const total = parts.reduce((sum, part) => sum + part.length, 0);
  const out = new Uint8Array(total);
  let offset = 0;
  for (const part of parts) {
    out.set(part, offset);
    offset += part.length;
  }
  return out;
}

function toHex(bytes) {
  return Array.from(bytes, (b) => b.toString(16).padStart(2, "0")).join("");
}

function bytesToBigInt(bytes) {
  return BigInt("0x" + (toHex(bytes) || "0"));
}

function bigIntTo32Bytes(value) {
  const hex = value.toString(16).padStart(64, "0");
  return Uint8Array.from(hex.match(/../g), (pair) => parseInt(pair, 16));
}

function modPow(base, exponent, modulus) {
  let result = 1n;
  base %= modulus;
  while (exponent > 0n) {
    if (exponent & 1n) result = (result * base) % modulus;
    base = (base * base) % modulus;
    exponent >>= 1n;
  }
  return result;
}

/** A compressed P-256 point (33 bytes) as the 65-byte uncompressed encoding WebCrypto imports. */
export function decompressPoint(compressed) {
  if (compressed.length !== 33 || (compressed[0] !== 2 && compressed[0] !== 3)) {
    throw new SealingError("not a compressed P-256 point");
  }
  const x = bytesToBigInt(compressed.subarray(1));
  if (x >= FIELD) throw new SealingError("point x-coordinate out of range");
  const ySquared = (((x * x) % FIELD) * x - 3n * x + CURVE_B) % FIELD;
  const rhs = (ySquared + FIELD) % FIELD;
  let y = modPow(rhs, (FIELD + 1n) / 4n, FIELD); // FIELD ≡ 3 (mod 4)
  if ((y * y) % FIELD !== rhs) throw new SealingError("not a point of P-256");
  if (Number(y & 1n) !== (compressed[0] & 1)) y = FIELD - y;
  return concat(new Uint8Array([4]), bigIntTo32Bytes(x), bigIntTo32Bytes(y));
}

/** The opening key as anchored by TenderRegistry.setOpeningKey: version, k, n, transcript hash, A_0..A_{k-1}. */
export function parseOpeningKey(bytes) {
  if (bytes.length < 3 + 32 + 33 || bytes[0] !== OPENING_KEY_VERSION) {
    throw new SealingError("not a version 1 opening key");
  }
  const threshold = bytes[1];
  const witnesses = bytes[2];
  const body = bytes.subarray(35);
  if (threshold < 1 || threshold > witnesses || body.length !== 33 * threshold) {
    throw new SealingError("opening key commitments do not match its threshold");
  }
  return { threshold, witnesses, publicKey: decompressPoint(body.subarray(0, 33)) };
}

/** Sorted keys, no spaces: the canonical JSON the Python side writes (the header is parsed, not hashed). */
export function canonicalJson(value) {
  if (Array.isArray(value)) return "[" + value.map(canonicalJson).join(",") + "]";
  if (value !== null && typeof value === "object") {
    const keys = Object.keys(value).sort();
    return "{" + keys.map((k) => JSON.stringify(k) + ":" + canonicalJson(value[k])).join(",") + "}";
  }
  return JSON.stringify(value);
}

async function sha256(bytes) {
  return new Uint8Array(await crypto.subtle.digest("SHA-256", bytes));
}

/** The commitment for TenderRegistry.commitBid: SHA-256 of the whole envelope. */
export async function commitmentOf(envelope) {
  return sha256(envelope);
}

function checkAnnounced(announced) {
  if (announced === null || typeof announced !== "object" || Array.isArray(announced)) {
    throw new SealingError("announced fields must be an object");
  }
  const price = announced.price_fen;
  if (!Number.isSafeInteger(price) || price < 0) {
    throw new SealingError("announced.price_fen must be a non-negative integer (fen)");
  }
  for (const [name, value] of Object.entries(announced)) {
    const ok = Number.isSafeInteger(value) || (typeof value === "string" && value.length <= 1000);
    if (!name || name.length > 64 || !ok) {
      throw new SealingError(`announced.${name} must be an integer or a string of at most 1000 characters`);
    }
  }
}

async function encodePlaintext(sectionId, bidder, announced, document, documentName) {
  checkAnnounced(announced);
  const header = {
    format: PLAINTEXT_FORMAT,
    section_id: "0x" + toHex(sectionId),
    bidder: bidder.toLowerCase(),
    announced,
    document: { name: documentName, sha256: toHex(await sha256(document)), size: document.length },
  };
  const encoded = new TextEncoder().encode(canonicalJson(header));
  const length = new Uint8Array(4);
  new DataView(length.buffer).setUint32(0, encoded.length, false);
  return concat(length, encoded, document);
}

async function wrapContentKey(ephemeral, ephemeralRaw, recipientRaw, role, sectionId, prefix, contentKey) {
  const recipient = await crypto.subtle.importKey("raw", recipientRaw, CURVE, false, []);
  const shared = await crypto.subtle.deriveBits({ name: "ECDH", public: recipient }, ephemeral.privateKey, 256);
  const ikm = await crypto.subtle.importKey("raw", shared, "HKDF", false, ["deriveBits"]);
  const info = concat(WRAP_INFO, new Uint8Array([role]), ephemeralRaw, recipientRaw);
  const kekBits = await crypto.subtle.deriveBits({ name: "HKDF", hash: "SHA-256", salt: sectionId, info }, ikm, 256);
  const kek = await crypto.subtle.importKey("raw", kekBits, "AES-GCM", false, ["encrypt"]);
  const wrapped = await crypto.subtle.encrypt({ name: "AES-GCM", iv: ZERO_NONCE, additionalData: prefix }, kek, contentKey);
  return new Uint8Array(wrapped);
}

/**
 * Seal a bid to the section's anchored opening key (and, with bidderPublicKey, also to the bidder's own
 * P-256 key so the bidder can decrypt it too). Returns the envelope bytes.
 *
 * sectionId: Uint8Array(32); openingKey: Uint8Array (as anchored); bidder: "0x…" account;
 * announced: {price_fen, duration_days, quality, …}; document: Uint8Array; bidderPublicKey: Uint8Array(65) raw.
 */
export async function sealBid({ sectionId, openingKey, bidder, announced, document, documentName = "bid.pdf", bidderPublicKey = null }) {
  if (!(sectionId instanceof Uint8Array) || sectionId.length !== 32) throw new SealingError("sectionId must be 32 bytes");
  if (!/^0x[0-9a-fA-F]{40}$/.test(bidder)) throw new SealingError("bidder must be a 0x account address");
  if (!(document instanceof Uint8Array)) throw new SealingError("document must be a Uint8Array");
  if (!(openingKey instanceof Uint8Array)) throw new SealingError("openingKey must be a Uint8Array");
  const key = parseOpeningKey(openingKey);
  const plaintext = await encodePlaintext(sectionId, bidder, announced, document, documentName);
  const ephemeral = await crypto.subtle.generateKey(CURVE, true, ["deriveBits"]);
  const ephemeralRaw = new Uint8Array(await crypto.subtle.exportKey("raw", ephemeral.publicKey));
  const flags = bidderPublicKey ? FLAG_BIDDER_WRAP : 0;
  const prefix = concat(MAGIC, new Uint8Array([VERSION, flags]), sectionId, await sha256(openingKey), ephemeralRaw);
  const contentKeyRaw = crypto.getRandomValues(new Uint8Array(32));
  const parts = [prefix];
  parts.push(await wrapContentKey(ephemeral, ephemeralRaw, key.publicKey, ROLE_OPENING, sectionId, prefix, contentKeyRaw));
  if (bidderPublicKey) {
    if (bidderPublicKey.length !== 65 || bidderPublicKey[0] !== 4) throw new SealingError("bidder key must be 65-byte raw P-256");
    parts.push(bidderPublicKey);
    parts.push(await wrapContentKey(ephemeral, ephemeralRaw, bidderPublicKey, ROLE_BIDDER, sectionId, prefix, contentKeyRaw));
  }
  const nonce = crypto.getRandomValues(new Uint8Array(12));
  parts.push(nonce);
  const header = concat(...parts);
  const contentKey = await crypto.subtle.importKey("raw", contentKeyRaw, "AES-GCM", false, ["encrypt"]);
  contentKeyRaw.fill(0);
  const ciphertext = await crypto.subtle.encrypt({ name: "AES-GCM", iv: nonce, additionalData: header }, contentKey, plaintext);
  return concat(header, new Uint8Array(ciphertext));
}
