// The natives a module of the WebAssembly backend imports (malloc,
// realloc, free, memcpy) over its memory, as the in-process runner
// provides them (doc/formats/wasm-abi.md §9): bump allocation from
// __memory_base with 16-byte alignment, block sizes kept here, free
// giving back the most recent block and realloc growing it in place.
// Shared by the test harness (run.mjs) and the benchmark's timing harness
// (bench/node/time_kernel.mjs).

const PAGE = 65536;

export function natives(memory, memoryBase) {
  let next = memoryBase;
  const sizes = new Map();
  const bytes = () => new Uint8Array(memory.buffer);
  function malloc(size) {
    size = Number(size);
    const start = Math.ceil(next / 16) * 16;
    const end = start + Math.max(size, 1);
    if (end > 2 ** 32) return 0;
    if (end > memory.buffer.byteLength) {
      memory.grow(Math.ceil((end - memory.buffer.byteLength) / PAGE));
    }
    next = end;
    sizes.set(start, size);
    return start;
  }
  function free(p) {
    p >>>= 0;
    const size = sizes.get(p);
    if (size === undefined) return;
    sizes.delete(p);
    if (p + Math.max(size, 1) === next) next = p;
  }
  function memcpy(dst, src, n) {
    bytes().copyWithin(dst >>> 0, src >>> 0, (src >>> 0) + Number(n));
    return dst;
  }
  function realloc(p, size) {
    p >>>= 0;
    if (p === 0) return malloc(size);
    const old = sizes.get(p) ?? 0;
    if (p + Math.max(old, 1) === next) {
      free(p);
      return malloc(size);
    }
    const q = malloc(size);
    if (q !== 0) {
      memcpy(q, p, Math.min(old, Number(size)));
      free(p);
    }
    return q;
  }
  return { malloc, realloc, free, memcpy };
}
