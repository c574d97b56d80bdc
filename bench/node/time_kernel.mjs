// Times one kernel of smfjit-bench's suite in Node (V8), as the `wasm`
// benchmark area spawns it: the module the WebAssembly backend emitted,
// a host as doc/formats/wasm-abi.md describes (its own memory and table,
// the natives of tests/wasm/heap.mjs, as the in-process runner's), the
// kernel's input buffers copied
// into the memory once, then WARMUP untimed runs (V8 tiers the module up
// from Liftoff to TurboFan meanwhile) and RUNS runs each timed with
// process.hrtime.bigint(). Prints one line of JSON: the median and p99 in
// nanoseconds, the digest of the last run (the same digest the Rust side
// computes, to check the work) and Node's version.
//
//   node time_kernel.mjs MODULE.wasm SYMBOL KIND RUNS WARMUP [BUFFER.bin…]
//
// KIND is sum, dot, sort, search or push:N (N pushes); the buffers are the
// kernel's inputs in argument order (search: the sorted array, then the
// keys; sort: the unsorted input; push: none).
import { readFileSync } from "node:fs";
import { natives as heapNatives } from "../../tests/wasm/heap.mjs";

const [file, symbol, kind, runsText, warmText, ...files] = process.argv.slice(2);
const runs = Number(runsText);
const warmup = Number(warmText);
if (!file || !symbol || !kind || !(runs > 0) || !(warmup >= 0)) {
  process.stderr.write("usage: node time_kernel.mjs MODULE.wasm SYMBOL KIND RUNS WARMUP [BUFFER.bin…]\n");
  process.exit(2);
}

const memory = new WebAssembly.Memory({ initial: 1 });
const natives = heapNatives(memory, 1024);
const { malloc, free } = natives;
const bytes = () => new Uint8Array(memory.buffer);

const module = new WebAssembly.Module(readFileSync(file));
const env = {
  memory,
  __indirect_function_table: new WebAssembly.Table({ element: "anyfunc", initial: 1 }),
  __memory_base: new WebAssembly.Global({ value: "i32", mutable: false }, 1024),
  __table_base: new WebAssembly.Global({ value: "i32", mutable: false }, 1),
};
for (const imp of WebAssembly.Module.imports(module)) {
  if (imp.kind === "function") env[imp.name] = natives[imp.name];
}
const f = new WebAssembly.Instance(module, { env }).exports[symbol];
if (typeof f !== "function") throw new Error(`no export ${symbol}`);

const inputs = files.map((name) => readFileSync(name));
const at = inputs.map((input) => {
  const p = malloc(input.length);
  bytes().set(input, p);
  return p;
});
const view = () => new DataView(memory.buffer);
const u64 = (x) => BigInt.asUintN(64, x);
const count = (k) => BigInt(inputs[k].length / 8);

let run;
if (kind === "sum") {
  run = () => u64(f(at[0], count(0)));
} else if (kind === "dot") {
  const bits = new DataView(new ArrayBuffer(8));
  run = () => {
    bits.setFloat64(0, f(at[0], at[1], count(0)));
    return bits.getBigUint64(0);
  };
} else if (kind === "sort") {
  run = () => {
    bytes().set(inputs[0], at[0]);
    f(at[0], count(0));
    return u64(view().getBigInt64(at[0], true));
  };
} else if (kind === "search") {
  const keys = Array.from({ length: inputs[1].length / 8 }, (_, k) => view().getBigInt64(at[1] + 8 * k, true));
  run = () => {
    let sum = 0n;
    for (const key of keys) sum = u64(sum + u64(f(at[0], count(0), key)));
    return sum;
  };
} else if (kind.startsWith("push:")) {
  const pushes = BigInt(kind.slice(5));
  const header = malloc(24);
  run = () => {
    bytes().fill(0, header, header + 24);
    for (let k = 0n; k < pushes; k++) f(header, k);
    const v = view();
    const data = v.getUint32(header, true);
    const len = Number(v.getBigInt64(header + 8, true));
    const last = len === 0 ? 0n : u64(v.getBigInt64(data + 8 * (len - 1), true));
    free(data);
    return last;
  };
} else {
  throw new Error(`unknown kernel kind ${kind}`);
}

let digest = 0n;
for (let k = 0; k < warmup; k++) digest = run();
const times = [];
for (let k = 0; k < runs; k++) {
  const start = process.hrtime.bigint();
  digest = run();
  times.push(Number(process.hrtime.bigint() - start));
}
times.sort((a, b) => a - b);
const at_q = (q) => times[Math.round((times.length - 1) * q)];
process.stdout.write(
  JSON.stringify({ median_ns: at_q(0.5), p99_ns: at_q(0.99), digest: digest.toString(), node: process.version }) + "\n",
);
