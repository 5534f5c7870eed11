// ethers.js v6, unmodified, against a chain_node validator: what a JavaScript dApp or tool does.
// Usage: node ethers_client.mjs RPC_URL PRIVATE_KEY INIT_CODE_HEX ; prints one JSON object.
import { JsonRpcProvider, Wallet } from "ethers";

const [url, key, initCode] = process.argv.slice(2);
// ethers caches identical requests for 250 ms by default; blocks here are final in less than that,
// so a second transaction sent right after the first one's receipt would get the stale nonce.
const provider = new JsonRpcProvider(url, undefined, { cacheTimeout: -1 });
const wallet = new Wallet(key, provider);

process.on("unhandledRejection", (error) => {
  // Say which request failed and what the node answered, not only ethers' summary.
  console.error(JSON.stringify(error?.info ?? { message: String(error) }, (_, v) => (typeof v === "bigint" ? v.toString() : v)));
  process.exit(1);
});

const network = await provider.getNetwork();
const fees = await provider.getFeeData();
const deployment = await wallet.sendTransaction({ data: initCode });
const deployed = await deployment.wait();
const word = "0x" + "00".repeat(31) + "2a";
const estimate = await provider.estimateGas({ from: wallet.address, to: deployed.contractAddress, data: word });
const setting = await wallet.sendTransaction({ to: deployed.contractAddress, data: word });
const set = await setting.wait();
const before = await provider.call({ to: deployed.contractAddress, blockTag: deployed.blockNumber });
const after = await provider.call({ to: deployed.contractAddress });
const block = await provider.getBlock(set.blockNumber, true);
const fetched = await provider.getTransaction(setting.hash);
const nonce = await provider.getTransactionCount(wallet.address, "pending");
const logs = await provider.getLogs({ fromBlock: deployed.blockNumber, toBlock: set.blockNumber, address: deployed.contractAddress });
console.log(JSON.stringify({
  chainId: network.chainId.toString(),
  maxFeePerGas: fees.maxFeePerGas?.toString() ?? null,
  nonce,
  contractAddress: deployed.contractAddress,
  deployStatus: deployed.status,
  setStatus: set.status,
  estimate: estimate.toString(),
  before,
  after,
  blockHash: block.hash,
  blockHasTx: block.prefetchedTransactions.some((tx) => tx.hash === setting.hash),
  fetchedFrom: fetched.from,
  wallet: wallet.address,
  logs: logs.length,
}));
