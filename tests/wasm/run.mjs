// Runs exports of a module the WebAssembly backend emitted, in Node (V8),
// as a host that follows doc/formats/wasm-abi.md: it creates the memory,
// the table (slots below __table_base null), the two base globals and the
// shared memories and tables it is told to define itself, provides
// malloc/realloc/free/memcpy over the module's memory (heap.mjs), and
// prints one line of JSON a call.
//
//   node tests/wasm/run.mjs MODULE.wasm SYMBOL [ARG…] [--then SYMBOL [ARG…]]…
//        [--table-base N] [--memory NAME:INITIAL:MAXIMUM]… [--table NAME:INITIAL:MAXIMUM]…
//
// Each --then starts another call on the same instance, after the ones
// before it. --memory and --table define a shared memory (sizes in 64 KiB
// pages) or table (sizes in entries) as §11 of the ABI says: a 16-byte
// descriptor and the whole maximum, zeroed, placed from __memory_base up
// (the heap starts after them), its address given as the global
// env.__memory.NAME or env.__table.NAME.
//
// ARG is TYPE:VALUE for a scalar (i8 … u64, f32, f64, bool; VALUE may be
// nan, inf, -inf, true, false) or buf:TYPE:V1,V2,… for a buffer of
// elements, copied into the memory before the call (its address is the
// argument) and printed after it; ret:TYPE says how to read the result
// (default i32: the module returns narrow integers, bool and pointers as
// i32). Output:
//
//   {"result": VALUE|null, "buffers": [[V…]…], "trap": null|{"kind", "code"},
//    "shared": {NAME: {"base", "length", "maximum", "version"}…}}
//
// A trap's kind is explicit (with its code), divide_by_zero, null_pointer,
// out_of_bounds or engine (with the engine's message); "shared" is every
// descriptor after the call.
//
// 64-bit integers are printed as strings (JSON numbers lose their low
// bits); NaN, infinities and negative zero as "nan", "inf", "-inf", "-0".
import { readFileSync } from "node:fs";
import { natives as heapNatives } from "./heap.mjs";

const SIZES = { i8: 1, u8: 1, bool: 1, i16: 2, u16: 2, i32: 4, u32: 4, f32: 4, i64: 8, u64: 8, f64: 8, ptr: 4 };

function usage(message) {
  process.stderr.write(
    `error: ${message}\nusage: node run.mjs MODULE.wasm SYMBOL [TYPE:VALUE | buf:TYPE:V1,V2,…]… ` +
      `[--then SYMBOL ARG…]… [--table-base N] [--memory NAME:INITIAL:MAXIMUM]… [--table NAME:INITIAL:MAXIMUM]…\n`,
  );
  process.exit(2);
}

const PAGE = 65536;
// The descriptor of a shared memory or table: base, length, maximum,
// version, each a little-endian u32 (lengths in bytes for a memory, in
// entries for a table).
const DESCRIPTOR = { size: 16, base: 0, length: 4, maximum: 8, version: 12 };
// Per space: the import prefix, length units per unit of size, bytes per
// unit of length.
const SPACES = {
  memory: { prefix: "__memory.", perSize: PAGE, bytes: 1 },
  table: { prefix: "__table.", perSize: 1, bytes: 4 },
};

const argv = process.argv.slice(2);
let tableBase = 7;
const definitions = [];
const calls = [[]];
for (let k = 0; k < argv.length; k++) {
  if (argv[k] === "--table-base") {
    tableBase = Number(argv[++k]);
    if (!Number.isInteger(tableBase) || tableBase < 1) usage("--table-base takes an integer ≥ 1");
  } else if (argv[k] === "--memory" || argv[k] === "--table") {
    const space = argv[k].slice(2);
    const [name, initial, maximum] = (argv[++k] ?? "").split(":");
    const sizes = [Number(initial), Number(maximum)];
    if (!name || !sizes.every(Number.isInteger) || sizes[0] < 0 || sizes[0] > sizes[1]) {
      usage(`--${space} takes NAME:INITIAL:MAXIMUM with 0 ≤ INITIAL ≤ MAXIMUM`);
    }
    if (definitions.some((d) => d.name === name)) usage(`${name} is defined twice`);
    definitions.push({ space, name, initial: sizes[0], maximum: sizes[1] });
  } else if (argv[k] === "--then") {
    calls.push([]);
  } else {
    calls[calls.length - 1].push(argv[k]);
  }
}
const file = calls[0].shift();
if (!file || calls.some((c) => c.length === 0)) usage("a module and a symbol for every call are needed");

const MEMORY_BASE = 1024;
const memory = new WebAssembly.Memory({ initial: 1 });
const module = new WebAssembly.Module(readFileSync(file));
const table = new WebAssembly.Table({ element: "anyfunc", initial: tableBase + 256 });

const env = {
  memory,
  __indirect_function_table: table,
  __memory_base: new WebAssembly.Global({ value: "i32", mutable: false }, MEMORY_BASE),
  __table_base: new WebAssembly.Global({ value: "i32", mutable: false }, tableBase),
};
// The shared memories and tables, each a descriptor and its zeroed
// reservation (fresh pages of the memory are zero), then the heap.
let heapStart = MEMORY_BASE;
for (const d of definitions) {
  const space = SPACES[d.space];
  d.address = Math.ceil(heapStart / 16) * 16;
  const base = d.address + DESCRIPTOR.size;
  const reserved = d.maximum * space.perSize * space.bytes;
  if (d.maximum * space.perSize >= 2 ** 32 || base + reserved > 2 ** 32) usage(`${d.name} does not fit the memory`);
  heapStart = base + Math.max(reserved, 1);
  if (heapStart > memory.buffer.byteLength) memory.grow(Math.ceil((heapStart - memory.buffer.byteLength) / PAGE));
  const v = new DataView(memory.buffer);
  v.setUint32(d.address + DESCRIPTOR.base, base, true);
  v.setUint32(d.address + DESCRIPTOR.length, d.initial * space.perSize, true);
  v.setUint32(d.address + DESCRIPTOR.maximum, d.maximum * space.perSize, true);
  v.setUint32(d.address + DESCRIPTOR.version, 0, true);
  env[space.prefix + d.name] = new WebAssembly.Global({ value: "i32", mutable: false }, d.address);
}
const natives = heapNatives(memory, heapStart);
const { malloc } = natives;
for (const imp of WebAssembly.Module.imports(module)) {
  if (imp.kind === "global" && !(imp.name in env)) usage(`the import env.${imp.name} is not provided`);
  if (imp.kind !== "function") continue;
  if (!(imp.name in natives)) usage(`the import env.${imp.name} is not provided`);
  env[imp.name] = natives[imp.name];
}
const instance = new WebAssembly.Instance(module, { env });

function parseScalar(type, text) {
  switch (type) {
    case "f32":
    case "f64":
      return text === "nan" ? NaN : text === "inf" ? Infinity : text === "-inf" ? -Infinity : Number(text);
    case "bool":
      return text === "true" || text === "1" ? 1 : 0;
    case "i64":
    case "u64":
      return BigInt.asIntN(64, BigInt(text));
    default:
      if (!(type in SIZES)) usage(`unknown type ${type}`);
      return Number(BigInt.asIntN(32, BigInt(text)));
  }
}

function view() {
  return new DataView(memory.buffer);
}

function store(type, at, value) {
  const v = view();
  switch (type) {
    case "i8": case "u8": case "bool": v.setUint8(at, Number(value) & 0xff); break;
    case "i16": case "u16": v.setUint16(at, Number(value) & 0xffff, true); break;
    case "i32": case "u32": case "ptr": v.setUint32(at, Number(value) >>> 0, true); break;
    case "i64": case "u64": v.setBigUint64(at, BigInt.asUintN(64, BigInt(value)), true); break;
    case "f32": v.setFloat32(at, value, true); break;
    case "f64": v.setFloat64(at, value, true); break;
  }
}

function load(type, at) {
  const v = view();
  switch (type) {
    case "i8": return v.getInt8(at);
    case "u8": return v.getUint8(at);
    case "bool": return v.getUint8(at) & 1 ? true : false;
    case "i16": return v.getInt16(at, true);
    case "u16": return v.getUint16(at, true);
    case "i32": return v.getInt32(at, true);
    case "u32": case "ptr": return v.getUint32(at, true);
    case "i64": return v.getBigInt64(at, true);
    case "u64": return v.getBigUint64(at, true);
    case "f32": return v.getFloat32(at, true);
    case "f64": return v.getFloat64(at, true);
  }
}

// A result in the module's representation, as the IR type `type` reads it.
function typed(type, raw) {
  switch (type) {
    case "i8": return (raw << 24) >> 24;
    case "u8": return raw & 0xff;
    case "i16": return (raw << 16) >> 16;
    case "u16": return raw & 0xffff;
    case "u32": case "ptr": return raw >>> 0;
    case "bool": return (raw & 1) === 1;
    case "u64": return BigInt.asUintN(64, raw);
    default: return raw;
  }
}

function json(value) {
  if (typeof value === "bigint") return value.toString();
  if (typeof value === "number" && !Number.isFinite(value)) {
    return Number.isNaN(value) ? "nan" : value > 0 ? "inf" : "-inf";
  }
  // JSON has no negative zero.
  if (Object.is(value, -0)) return "-0";
  return value;
}

// The descriptors as they are now.
function shared() {
  const out = {};
  const v = view();
  for (const d of definitions) {
    out[d.name] = {
      base: v.getUint32(d.address + DESCRIPTOR.base, true),
      length: v.getUint32(d.address + DESCRIPTOR.length, true),
      maximum: v.getUint32(d.address + DESCRIPTOR.maximum, true),
      version: v.getUint32(d.address + DESCRIPTOR.version, true),
    };
  }
  return out;
}

// The IR trap an `unreachable` stands for: __trap_kind says which.
function unreachable(message) {
  switch (instance.exports.__trap_kind.value) {
    case 0: return { kind: "explicit", code: instance.exports.__trap_code.value >>> 0 };
    case 1: return { kind: "out_of_bounds" };
    case 2: return { kind: "null_pointer" };
    default: return { kind: "engine", message };
  }
}

function run([symbol, ...args]) {
  const fn = instance.exports[symbol];
  if (typeof fn !== "function") usage(`no export ${symbol}`);
  let resultType = "i32";
  const buffers = [];
  const callArgs = [];
  for (const arg of args) {
    const parts = arg.split(":");
    if (parts[0] === "buf") {
      const type = parts[1];
      if (!(type in SIZES)) usage(`unknown element type ${type}`);
      const values = parts[2] === undefined || parts[2] === "" ? [] : parts[2].split(",").map((t) => parseScalar(type, t));
      const at = malloc(values.length * SIZES[type]);
      values.forEach((v, k) => store(type, at + k * SIZES[type], v));
      buffers.push({ type, at, length: values.length });
      callArgs.push(at);
    } else if (parts[0] === "ret") {
      resultType = parts[1];
    } else if (parts.length === 2) {
      callArgs.push(parseScalar(parts[0], parts[1]));
    } else {
      usage(`cannot read the argument ${arg}`);
    }
  }

  const out = { result: null, buffers: [], trap: null, shared: {} };
  try {
    const raw = fn(...callArgs);
    out.result = raw === undefined ? null : json(typed(resultType, raw));
  } catch (e) {
    if (!(e instanceof WebAssembly.RuntimeError)) throw e;
    const message = String(e.message);
    if (/unreachable/.test(message)) {
      out.trap = unreachable(message);
    } else if (/divi(de|sion) by zero/.test(message)) {
      out.trap = { kind: "divide_by_zero" };
    } else if (/null function|uninitialized element/.test(message)) {
      out.trap = { kind: "null_pointer", message };
    } else {
      out.trap = { kind: "engine", message };
    }
  }
  for (const b of buffers) {
    const values = [];
    for (let k = 0; k < b.length; k++) values.push(json(load(b.type, b.at + k * SIZES[b.type])));
    out.buffers.push(values);
  }
  out.shared = shared();
  process.stdout.write(JSON.stringify(out) + "\n");
}

for (const call of calls) run(call);
