//! The x86-64 backend (BRIEF §8).
//!
//! (a) Cold compile latency: a verified instantiation to a callable
//! pointer (register allocation, lowering, encoding, reservation, linking,
//! publication with its protection change), for templates of about 10,
//! 50 and 200 instructions, with the median, p99 and the share of the
//! iced-x86 encoding step.
//!
//! (b) Run time of the kernel suite — sum, dot, sort, binary search, vec
//! push — compiled by the backend, run by the reference interpreter, and
//! written in Rust here the way the templates are written (same
//! algorithms, same order of floating-point operations), compiled by
//! `rustc -O`.

#![allow(unsafe_code)]

use std::cell::RefCell;
use std::ffi::c_void;
use std::hint::black_box;

use execmem::{Config, ExecMemory, Strategy};
use jit::backend::{Backend, CallResolver, CallTarget, CompiledBatch, Options, TrapRuntime};
use jit::instantiate::{Instance, instantiate_all};
use jit::interp::{Interpreter, LibraryResolver, Value};
use jit::ir::{Callee, Library, TemplateName, Type};

use crate::harness::{Report, Row, Stats, fmt_duration, measure};

unsafe extern "C" {
    fn malloc(size: usize) -> *mut c_void;
    fn realloc(p: *mut c_void, size: usize) -> *mut c_void;
    fn free(p: *mut c_void);
    fn memcpy(dst: *mut c_void, src: *const c_void, n: usize) -> *mut c_void;
}

pub(crate) fn natives() -> [(&'static str, u64); 4] {
    [
        ("malloc", malloc as *const () as usize as u64),
        ("realloc", realloc as *const () as usize as u64),
        ("free", free as *const () as usize as u64),
        ("memcpy", memcpy as *const () as usize as u64),
    ]
}

/// Imports resolve to libc; everything else is compiled in the same batch.
pub(crate) struct Imports;

impl CallResolver for Imports {
    fn resolve(&mut self, callee: &Callee) -> Result<CallTarget, jit::Error> {
        let name = match callee {
            Callee::Import(n) | Callee::Symbol(n) => n.as_str(),
            Callee::Template { .. } => "",
        };
        natives()
            .iter()
            .find(|(n, _)| *n == name)
            .map(|&(_, a)| CallTarget::Direct(a))
            .ok_or_else(|| jit::Error::new(jit::ErrorKind::Unresolved(name.to_owned())))
    }
}

/// `mix<T>`: a loop whose body has `rounds` rounds of multiply, xor and
/// add over the loaded element — about 8 + 3 × rounds instructions.
pub(crate) fn mix_template(rounds: usize) -> String {
    let mut body = String::new();
    let mut h = "%h".to_owned();
    for r in 0..rounds {
        body.push_str(&format!(
            "    %a{r} = mul T {h}, %k1\n    %b{r} = xor T %a{r}, %x\n    %c{r} = add T %b{r}, %k2\n"
        ));
        h = format!("%c{r}");
    }
    format!(
        "fn mix<T: int>(%xs: ptr<T>, %n: i64) -> T {{\nentry:\n    %zero = const T 0\n    \
         %i0 = const i64 0\n    %one = const i64 1\n    %k1 = const T 31\n    %k2 = const T 7\n    \
         br loop(%i0, %zero)\nloop(%i: i64, %h: T):\n    %more = cmp lt i64 %i, %n\n    \
         cond_br %more, body, done\nbody:\n    %x = load T %xs[%i]\n{body}    \
         %next = add i64 %i, %one\n    br loop(%next, {h})\ndone:\n    ret %h\n}}\n"
    )
}

pub(crate) fn instances(lib: &Library, name: TemplateName, args: &[Type]) -> Vec<Instance> {
    instantiate_all(lib, &name, args).unwrap_or_else(|e| panic!("instantiating {name}: {e}"))
}

pub(crate) struct Compiler {
    pub(crate) memory: ExecMemory,
    pub(crate) backend: Backend,
    // Keeps the trap handler the code calls alive.
    _runtime: TrapRuntime,
}

impl Compiler {
    /// Our backend as the loader configures it.
    pub(crate) fn new(strategy: Strategy) -> Self {
        Self::with_null_checks(strategy, true)
    }

    /// Our backend with implicit null checks (the loader's setting, where
    /// the runtime catches null faults) or with explicit tests, for
    /// comparison.
    pub(crate) fn with_null_checks(strategy: Strategy, implicit: bool) -> Self {
        let memory = ExecMemory::new(Config {
            strategy,
            ..Config::default()
        })
        .expect("executable memory");
        let runtime = TrapRuntime::new(&memory).expect("trap runtime");
        assert!(
            !implicit || runtime.catches_null_faults(),
            "implicit null checks need the runtime's fault handler"
        );
        let backend = Backend::new(Options {
            implicit_null_checks: implicit,
            ..runtime.options()
        });
        Compiler {
            memory,
            backend,
            _runtime: runtime,
        }
    }

    pub(crate) fn batch(&self, insts: &[Instance]) -> CompiledBatch {
        let refs: Vec<&Instance> = insts.iter().collect();
        self.backend
            .compile_batch(&self.memory, &refs, &mut Imports)
            .expect("compiles")
    }
}

pub(crate) const COMPILE_RUNS: usize = 2000;

fn cold_compile(report: &mut Report) {
    for strategy in crate::harness::STRATEGIES {
        let c = Compiler::new(strategy);
        let label = crate::harness::strategy_label(c.memory.strategy());
        for rounds in [1usize, 14, 64] {
            let lib = jit::text::parse_library(&mix_template(rounds)).expect("parses");
            jit::verify::verify_library(&lib).expect("verifies");
            let inst = &instances(&lib, TemplateName::free("mix"), &[Type::I64])[0];
            let (f, types) = (&inst.function, &inst.reg_types);
            let name = [inst.symbol.as_str()];
            let total = measure(COMPILE_RUNS, || {
                c.backend
                    .compile(&c.memory, f, types, &mut Imports)
                    .expect("compiles")
            });
            let lower = measure(COMPILE_RUNS, || {
                c.backend
                    .lower(f, types, &name, &mut Imports)
                    .expect("lowers")
            });
            // Encoding consumes the lowered function: clones made beforehand
            // keep the copying out of the measurement.
            let lowered = c
                .backend
                .lower(f, types, &name, &mut Imports)
                .expect("lowers");
            let mut copies: Vec<_> = (0..COMPILE_RUNS + 10).map(|_| lowered.clone()).collect();
            let encode = measure(COMPILE_RUNS, || {
                copies
                    .pop()
                    .expect("one copy per run")
                    .encode()
                    .expect("encodes")
            });
            let prepared = c
                .backend
                .prepare(f, types, &name, &mut Imports)
                .expect("prepares");
            let publish = measure(COMPILE_RUNS, || {
                c.backend
                    .publish(&c.memory, std::slice::from_ref(&prepared))
                    .expect("publishes")
            });
            let encode_ns = encode.median_ns();
            let share = encode_ns / total.median_ns();
            let insts = f.inst_count();
            let what = format!("cold compile, {insts} insts ({label})");
            let row = Row::new("backend", what, fmt_duration(total.median))
                .baseline(format!("p99 {}", fmt_duration(total.p99)))
                .ratio(format!("enc {:.0}%", share * 100.0));
            report.row(row);
            report.row(
                Row::new(
                    "backend",
                    format!("  stages: alloc+lower / encode / publish, {insts} insts"),
                    fmt_duration(lower.median),
                )
                .baseline(format!("{:.2} µs", encode_ns / 1e3))
                .ratio(fmt_duration(publish.median)),
            );
            println!(
                "    {label}: {} bytes of code for {insts} instructions",
                prepared.size()
            );
        }
    }
}

// ---- kernels written in Rust like the templates --------------------------

#[inline(never)]
fn rust_sum(xs: &[i64]) -> i64 {
    xs.iter().fold(0i64, |a, &x| a.wrapping_add(x))
}

#[inline(never)]
fn rust_dot(a: &[f64], b: &[f64]) -> f64 {
    a.iter().zip(b).fold(0.0, |acc, (x, y)| acc + x * y)
}

fn rust_insertion_sort(xs: &mut [i64]) {
    for i in 1..xs.len() {
        let key = xs[i];
        let mut j = i;
        while j > 0 && xs[j - 1] > key {
            xs[j] = xs[j - 1];
            j -= 1;
        }
        xs[j] = key;
    }
}

/// Lomuto quicksort recursing into the smaller side, insertion sort at
/// 8 or fewer: the `quicksort` template's algorithm.
#[inline(never)]
fn rust_quicksort(mut xs: &mut [i64]) {
    loop {
        if xs.len() <= 8 {
            rust_insertion_sort(xs);
            return;
        }
        let hi = xs.len() - 1;
        let pivot = xs[hi];
        let mut boundary = 0;
        for i in 0..hi {
            if xs[i] < pivot {
                xs.swap(i, boundary);
                boundary += 1;
            }
        }
        xs.swap(boundary, hi);
        let (left, right) = xs.split_at_mut(boundary);
        let right = &mut right[1..];
        if left.len() < right.len() {
            rust_quicksort(left);
            xs = right;
        } else {
            rust_quicksort(right);
            xs = left;
        }
    }
}

#[inline(never)]
fn rust_binary_search(xs: &[i64], key: i64) -> i64 {
    let (mut lo, mut hi) = (0usize, xs.len());
    while lo < hi {
        let mid = lo + (hi - lo) / 2;
        if xs[mid] < key {
            lo = mid + 1;
        } else {
            hi = mid;
        }
    }
    if lo < xs.len() && xs[lo] == key {
        lo as i64
    } else {
        -1
    }
}

#[repr(C)]
struct RawVec {
    data: *mut i64,
    len: i64,
    cap: i64,
}

/// `Vec::push` as the template does it: double (from 4) through realloc.
#[inline(never)]
extern "C" fn rust_push(v: &mut RawVec, x: i64) {
    if v.len == v.cap {
        let cap = if v.cap == 0 { 4 } else { v.cap * 2 };
        // SAFETY: `data` is null or came from realloc; the size is positive.
        let p = unsafe { realloc(v.data.cast(), (cap * 8) as usize) };
        assert!(!p.is_null(), "out of memory");
        v.data = p.cast();
        v.cap = cap;
    }
    // SAFETY: len < cap after growing.
    unsafe { v.data.add(v.len as usize).write(x) };
    v.len += 1;
}

const N: usize = 4096;
const SORT_N: usize = 1024;
const PUSHES: usize = 1000;
const SEARCHES: usize = 512;

fn data(n: usize, seed: u64) -> Vec<i64> {
    let mut s = seed;
    (0..n)
        .map(|_| {
            s ^= s << 13;
            s ^= s >> 7;
            s ^= s << 17;
            (s % 1_000_000) as i64
        })
        .collect()
}

/// The reference interpreter's resolver over `lib`, with the same libc
/// functions the compiled code calls.
pub(crate) fn interpreter_resolver(lib: &Library) -> LibraryResolver<'_> {
    natives()
        .into_iter()
        .fold(LibraryResolver::new(lib), |r, (n, a)| r.with_native(n, a))
}

fn interp_call(r: &LibraryResolver<'_>, symbol: &str, args: &[Value]) -> Option<Value> {
    // SAFETY: the pointers passed by the kernels point to live buffers of
    // the lengths passed with them.
    unsafe { Interpreter::new(r).call_symbol(symbol, args) }.expect("interprets")
}

fn ptr<T>(xs: &mut [T]) -> Value {
    Value::Ptr(xs.as_mut_ptr() as usize as u64)
}

/// Who runs a kernel.
#[derive(Clone, Copy)]
pub(crate) enum Runner<'a> {
    /// Machine code for the kernel's template, called through a plain
    /// function pointer; made by [`Runner::compiled`].
    Compiled(Entry),
    /// The Rust version, compiled by `rustc -O`.
    Rust,
    /// The reference interpreter.
    Interpreter(&'a LibraryResolver<'a>),
    /// The kernel's WebAssembly module in the in-process engine (wasmi);
    /// made by [`Kernel::in_wasm`].
    Wasm(&'a WasmSide),
}

/// A kernel's WebAssembly module instantiated in wasmi, with its input
/// buffers copied into the module's memory once.
pub(crate) struct WasmSide {
    runner: RefCell<jit::wasm::run::Runner>,
    /// Where [`Input::buffers`] are in the memory, in order; for sort the
    /// first is the working buffer, for push the vector's header.
    at: Vec<u32>,
}

impl WasmSide {
    fn call(&self, symbol: &str, args: &[Value]) -> Option<Value> {
        self.runner
            .borrow_mut()
            .call(symbol, args)
            .unwrap_or_else(|e| panic!("{symbol} in wasmi: {e}"))
    }

    fn ptr(&self, k: usize) -> Value {
        Value::Ptr(u64::from(self.at[k]))
    }

    fn write(&self, at: u32, bytes: &[u8]) {
        self.runner
            .borrow_mut()
            .write(at, bytes)
            .expect("inside the memory");
    }

    fn read_i64s(&self, at: u32, n: usize) -> Vec<i64> {
        let runner = self.runner.borrow();
        let bytes = runner.read(at, n * 8).expect("inside the memory");
        bytes
            .chunks_exact(8)
            .map(|c| i64::from_le_bytes(c.try_into().expect("8 bytes")))
            .collect()
    }
}

/// Little-endian bytes of 8-byte elements.
fn le_bytes<T: Copy>(xs: &[T], bytes: impl Fn(T) -> [u8; 8]) -> Vec<u8> {
    xs.iter().flat_map(|&x| bytes(x)).collect()
}

/// The entry point of a kernel's compiled template.
#[derive(Clone, Copy)]
pub(crate) struct Entry(u64);

impl Runner<'_> {
    /// Compiled code at `entry`.
    ///
    /// # Safety
    ///
    /// `entry` must be the kernel's template instantiated for its type
    /// argument and compiled for System V, and stay mapped while the runner
    /// is used with that kernel only.
    pub(crate) unsafe fn compiled(entry: u64) -> Self {
        Runner::Compiled(Entry(entry))
    }
}

/// A kernel's inputs and its working buffers.
enum Input {
    Sum(Vec<i64>),
    Dot(Vec<f64>, Vec<f64>),
    Sort { unsorted: Vec<i64>, work: Vec<i64> },
    Search { sorted: Vec<i64>, keys: Vec<i64> },
    Push,
}

/// The size of `Vec<i64>`'s header on wasm32: a 4-byte data pointer
/// (padded to 8), the length and the capacity.
const WASM_VEC_HEADER: usize = 24;

impl Input {
    /// The buffers another engine's memory receives, as little-endian
    /// bytes: the arrays in argument order (search's keys last; the
    /// caller passes them one by one), sort's unsorted input (copied into
    /// the working buffer before each run), push's empty vector header.
    fn buffers(&self) -> Vec<Vec<u8>> {
        match self {
            Input::Sum(xs) => vec![le_bytes(xs, i64::to_le_bytes)],
            Input::Dot(a, b) => vec![le_bytes(a, f64::to_le_bytes), le_bytes(b, f64::to_le_bytes)],
            Input::Sort { unsorted, .. } => vec![le_bytes(unsorted, i64::to_le_bytes)],
            Input::Search { sorted, keys } => vec![
                le_bytes(sorted, i64::to_le_bytes),
                le_bytes(keys, i64::to_le_bytes),
            ],
            Input::Push => vec![vec![0; WASM_VEC_HEADER]],
        }
    }
}

/// Pushes `0..PUSHES` through `Vec$i64$push` in the module onto the empty
/// vector at `header`, frees its data; returns the last element and
/// records the vector when asked, as [`run_pushes`] does natively.
fn wasm_pushes(w: &WasmSide, symbol: &str, header: u32, record: Option<&mut Vec<u64>>) -> u64 {
    w.write(header, &[0; WASM_VEC_HEADER]);
    for k in 0..PUSHES as i64 {
        w.call(symbol, &[Value::Ptr(u64::from(header)), Value::I64(k)]);
    }
    let (data, len, cap) = {
        let runner = w.runner.borrow();
        let h = runner
            .read(header, WASM_VEC_HEADER)
            .expect("inside the memory");
        let word = |at: usize| u64::from_le_bytes(h[at..at + 8].try_into().expect("8 bytes"));
        (word(0) as u32, word(8), word(16))
    };
    let contents = w.read_i64s(data, usize::try_from(len).expect("length"));
    if let Some(out) = record {
        out.extend([len, cap]);
        out.extend(contents.iter().map(|&x| x as u64));
    }
    w.runner.borrow_mut().free(data);
    contents.last().map_or(0, |&x| x as u64)
}

/// One kernel of the suite: a template, its inputs, and the same work done
/// by whichever [`Runner`] is asked.
pub(crate) struct Kernel {
    /// What the kernel does, for the table.
    pub(crate) label: &'static str,
    /// The template compiled for it.
    pub(crate) template: TemplateName,
    /// Its one type argument.
    pub(crate) ty: Type,
    /// Timed runs per round of compiled or Rust code.
    runs: usize,
    /// Timed runs of the interpreter.
    interp_runs: usize,
    symbol: String,
    input: Input,
    /// Every value the last run computed, when `record` is set.
    outcome: Vec<u64>,
    record: bool,
}

/// Builds a `Vec<i64>` of `PUSHES` elements by calling `push` and frees it;
/// returns the last element and records the vector when asked.
fn run_pushes(push: &dyn Fn(&mut RawVec, i64), record: Option<&mut Vec<u64>>) -> u64 {
    let mut v = RawVec {
        data: std::ptr::null_mut(),
        len: 0,
        cap: 0,
    };
    for k in 0..PUSHES as i64 {
        push(&mut v, k);
    }
    let len = usize::try_from(v.len).expect("length");
    // SAFETY: `len` elements were written; the buffer came from realloc.
    let contents = unsafe { std::slice::from_raw_parts(v.data, len) };
    if let Some(out) = record {
        out.extend([v.len as u64, v.cap as u64]);
        out.extend(contents.iter().map(|&x| x as u64));
    }
    let last = contents.last().map_or(0, |&x| x as u64);
    // SAFETY: as above, freed once.
    unsafe { free(v.data.cast()) };
    last
}

/// Looks every key up with `find`; returns the sum of the answers, or
/// records each when asked.
fn search_all(keys: &[i64], record: Option<&mut Vec<u64>>, find: impl Fn(i64) -> i64) -> u64 {
    let answers = keys.iter().map(|&k| find(k) as u64);
    match record {
        Some(out) => {
            out.extend(answers);
            0
        }
        None => answers.fold(0u64, u64::wrapping_add),
    }
}

impl Kernel {
    fn new(
        label: &'static str,
        template: TemplateName,
        ty: Type,
        (runs, interp_runs): (usize, usize),
        input: Input,
    ) -> Self {
        let symbol = jit::mangle::mangle(&template, std::slice::from_ref(&ty)).expect("mangles");
        Kernel {
            label,
            template,
            ty,
            runs,
            interp_runs,
            symbol,
            input,
            outcome: Vec::new(),
            record: false,
        }
    }

    /// The kernel's template instantiated, with every instantiation it
    /// calls; the kernel's own comes first.
    pub(crate) fn instances(&self, lib: &Library) -> Vec<Instance> {
        instances(lib, self.template.clone(), std::slice::from_ref(&self.ty))
    }

    /// The kernel's module, compiled from `lib` (laid out for wasm32) and
    /// instantiated in wasmi, with [`Input::buffers`] in its memory.
    pub(crate) fn in_wasm(&self, lib: &Library) -> (jit::wasm::Module, WasmSide) {
        let insts = self.instances(lib);
        let refs: Vec<&Instance> = insts.iter().collect();
        let module = jit::wasm::compile(&refs).expect("compiles to wasm");
        let mut runner = jit::wasm::run::Runner::new(&module).expect("instantiates in wasmi");
        let at = self
            .buffers()
            .iter()
            .map(|bytes| {
                let at = runner
                    .alloc(u32::try_from(bytes.len()).expect("small"))
                    .expect("allocates");
                runner.write(at, bytes).expect("writes");
                at
            })
            .collect();
        let side = WasmSide {
            runner: RefCell::new(runner),
            at,
        };
        (module, side)
    }

    /// What another engine's memory receives ([`Input::buffers`]).
    pub(crate) fn buffers(&self) -> Vec<Vec<u8>> {
        self.input.buffers()
    }

    /// The kernel's kind as the Node timing harness names it.
    pub(crate) fn kind(&self) -> &'static str {
        match self.input {
            Input::Sum(_) => "sum",
            Input::Dot(..) => "dot",
            Input::Sort { .. } => "sort",
            Input::Search { .. } => "search",
            Input::Push => "push",
        }
    }

    /// Elements `Vec$i64$push` pushes per run.
    pub(crate) const PUSHES: usize = PUSHES;

    /// The mangled name of the kernel's instantiation.
    pub(crate) fn symbol(&self) -> &str {
        &self.symbol
    }

    /// Timed runs per round of compiled code.
    pub(crate) fn runs(&self) -> usize {
        self.runs
    }

    /// Runs the kernel once and returns a digest of what it computed (the
    /// full result is in the outcome when recording).
    pub(crate) fn run(&mut self, runner: Runner<'_>) -> u64 {
        let Kernel {
            symbol,
            input,
            outcome,
            record,
            ..
        } = self;
        let mut out = record.then(|| {
            outcome.clear();
            outcome
        });
        let mut keep = |v: u64| {
            if let Some(o) = out.as_deref_mut() {
                o.push(v);
            }
            v
        };
        match input {
            Input::Sum(xs) => keep(match runner {
                Runner::Compiled(Entry(e)) => {
                    // SAFETY: `sum$i64` has this signature (`Runner::compiled`).
                    let f: extern "C" fn(*const i64, i64) -> i64 =
                        unsafe { std::mem::transmute(e as usize) };
                    f(black_box(xs.as_ptr()), N as i64) as u64
                }
                Runner::Rust => rust_sum(black_box(xs)) as u64,
                Runner::Interpreter(r) => {
                    match interp_call(r, symbol, &[ptr(xs), Value::I64(N as i64)]) {
                        Some(Value::I64(v)) => v as u64,
                        other => panic!("{symbol} returned {other:?}"),
                    }
                }
                Runner::Wasm(w) => match w.call(symbol, &[w.ptr(0), Value::I64(N as i64)]) {
                    Some(Value::I64(v)) => v as u64,
                    other => panic!("{symbol} returned {other:?}"),
                },
            }),
            Input::Dot(a, b) => keep(match runner {
                Runner::Compiled(Entry(e)) => {
                    // SAFETY: `dot$f64` has this signature (`Runner::compiled`).
                    let f: extern "C" fn(*const f64, *const f64, i64) -> f64 =
                        unsafe { std::mem::transmute(e as usize) };
                    f(black_box(a.as_ptr()), b.as_ptr(), N as i64).to_bits()
                }
                Runner::Rust => rust_dot(black_box(a), b).to_bits(),
                Runner::Interpreter(r) => {
                    match interp_call(r, symbol, &[ptr(a), ptr(b), Value::I64(N as i64)]) {
                        Some(Value::F64(v)) => v.to_bits(),
                        other => panic!("{symbol} returned {other:?}"),
                    }
                }
                Runner::Wasm(w) => {
                    match w.call(symbol, &[w.ptr(0), w.ptr(1), Value::I64(N as i64)]) {
                        Some(Value::F64(v)) => v.to_bits(),
                        other => panic!("{symbol} returned {other:?}"),
                    }
                }
            }),
            Input::Sort { unsorted, work } => {
                work.copy_from_slice(unsorted);
                match runner {
                    Runner::Compiled(Entry(e)) => {
                        // SAFETY: `sort$i64` has this signature (`Runner::compiled`).
                        let f: extern "C" fn(*mut i64, i64) =
                            unsafe { std::mem::transmute(e as usize) };
                        f(work.as_mut_ptr(), SORT_N as i64);
                    }
                    Runner::Rust => rust_quicksort(work),
                    Runner::Interpreter(r) => {
                        interp_call(r, symbol, &[ptr(work), Value::I64(SORT_N as i64)]);
                    }
                    // The copy into the module's memory stands for the
                    // native runs' copy into the working buffer.
                    Runner::Wasm(w) => {
                        w.write(w.at[0], &le_bytes(unsorted, i64::to_le_bytes));
                        w.call(symbol, &[w.ptr(0), Value::I64(SORT_N as i64)]);
                        work.copy_from_slice(&w.read_i64s(w.at[0], SORT_N));
                    }
                }
                if let Some(o) = out {
                    o.extend(work.iter().map(|&x| x as u64));
                }
                work.first().map_or(0, |&x| x as u64)
            }
            Input::Search { sorted, keys } => match runner {
                Runner::Compiled(Entry(e)) => {
                    // SAFETY: `binary_search$i64` has this signature
                    // (`Runner::compiled`).
                    let f: extern "C" fn(*const i64, i64, i64) -> i64 =
                        unsafe { std::mem::transmute(e as usize) };
                    search_all(keys, out, |k| f(black_box(sorted.as_ptr()), N as i64, k))
                }
                Runner::Rust => search_all(keys, out, |k| rust_binary_search(black_box(sorted), k)),
                Runner::Interpreter(r) => search_all(keys, out, |k| {
                    let xs = Value::Ptr(sorted.as_ptr() as usize as u64);
                    let args = [xs, Value::I64(N as i64), Value::I64(k)];
                    match interp_call(r, symbol, &args) {
                        Some(Value::I64(v)) => v,
                        other => panic!("{symbol} returned {other:?}"),
                    }
                }),
                Runner::Wasm(w) => search_all(keys, out, |k| {
                    match w.call(symbol, &[w.ptr(0), Value::I64(N as i64), Value::I64(k)]) {
                        Some(Value::I64(v)) => v,
                        other => panic!("{symbol} returned {other:?}"),
                    }
                }),
            },
            Input::Push => match runner {
                Runner::Compiled(Entry(e)) => {
                    // SAFETY: `Vec$i64$push` has this signature (the header
                    // is a RawVec; `Runner::compiled`).
                    let f: extern "C" fn(*mut RawVec, i64) =
                        unsafe { std::mem::transmute(e as usize) };
                    run_pushes(&|v, x| f(black_box(v), x), out)
                }
                Runner::Rust => run_pushes(&|v, x| rust_push(black_box(v), x), out),
                Runner::Interpreter(r) => run_pushes(
                    &|v, x| {
                        let v = Value::Ptr(v as *mut RawVec as usize as u64);
                        interp_call(r, symbol, &[v, Value::I64(x)]);
                    },
                    out,
                ),
                Runner::Wasm(w) => wasm_pushes(w, symbol, w.at[0], out),
            },
        }
    }

    /// Runs every runner once and panics unless all computed the same
    /// values, bit for bit: a miscompilation stops the benchmark instead
    /// of skewing it.
    ///
    /// # Panics
    /// When two runners disagree.
    pub(crate) fn verify(&mut self, runners: &[(&str, Runner<'_>)]) {
        self.record = true;
        let mut first: Option<(&str, Vec<u64>)> = None;
        for &(who, runner) in runners {
            self.run(runner);
            let got = std::mem::take(&mut self.outcome);
            match &first {
                None => first = Some((who, got)),
                Some((reference, want)) => assert!(
                    *want == got,
                    "{}: {who} computed something other than {reference}",
                    self.label
                ),
            }
        }
        self.record = false;
    }

    /// Measures the runners in alternation (`harness::race`). One
    /// [`Stats`] per runner, in order.
    pub(crate) fn race(&mut self, runners: &[Runner<'_>]) -> Vec<Stats> {
        crate::harness::race(runners.len(), |k| {
            let runner = runners[k];
            measure(self.runs, || self.run(runner))
        })
    }

    /// Measures the interpreter (slow, so fewer runs and one round).
    pub(crate) fn interpreted(&mut self, r: &LibraryResolver<'_>) -> Stats {
        let runs = self.interp_runs;
        measure(runs, || self.run(Runner::Interpreter(r)))
    }
}

/// The kernel suite: sum, dot, sort, binary search and vector push over
/// the same inputs in every benchmark that runs it.
pub(crate) fn kernel_suite() -> Vec<Kernel> {
    let i64t = Type::I64;
    let mut sorted = data(N, 5);
    sorted.sort_unstable();
    vec![
        Kernel::new(
            "sum i64 ×4096",
            TemplateName::free("sum"),
            i64t.clone(),
            (2000, 20),
            Input::Sum(data(N, 1)),
        ),
        Kernel::new(
            "dot f64 ×4096",
            TemplateName::free("dot"),
            Type::F64,
            (2000, 20),
            Input::Dot(
                data(N, 2).iter().map(|&v| v as f64 / 7.0).collect(),
                data(N, 3).iter().map(|&v| v as f64 / 3.0).collect(),
            ),
        ),
        Kernel::new(
            "sort i64 ×1024 (copy + sort)",
            TemplateName::free("sort"),
            i64t.clone(),
            (500, 5),
            Input::Sort {
                unsorted: data(SORT_N, 4),
                work: vec![0; SORT_N],
            },
        ),
        Kernel::new(
            "binary search i64, 512 keys in 4096",
            TemplateName::free("binary_search"),
            i64t.clone(),
            (2000, 10),
            Input::Search {
                sorted,
                keys: data(SEARCHES, 6),
            },
        ),
        Kernel::new(
            "vec push i64 ×1000 (+ free)",
            TemplateName::method("Vec", "push"),
            i64t,
            (2000, 5),
            Input::Push,
        ),
    ]
}

fn kernels(report: &mut Report) {
    let lib = jit::library::collections().expect("library");
    let r = interpreter_resolver(&lib);
    let c = Compiler::new(Strategy::Mprotect);
    let tested = Compiler::with_null_checks(Strategy::Mprotect, false);
    // Each kernel: (name, jit, interpreter, rustc) medians.
    let mut results: Vec<(&str, Stats, Stats, Stats)> = Vec::new();
    // Each kernel's code with explicit null tests instead: (name, time).
    let mut explicit: Vec<(&str, Stats)> = Vec::new();
    for mut kernel in kernel_suite() {
        let insts = kernel.instances(&lib);
        let batch = c.batch(&insts);
        let entry = batch.function(&insts[0].symbol).expect("root").address();
        let batch_tested = tested.batch(&insts);
        let entry_tested = batch_tested
            .function(&insts[0].symbol)
            .expect("root")
            .address();
        // SAFETY: the kernel's own instantiation, compiled both ways; the
        // batches live until the end of this iteration.
        let (jit, jit_tested) =
            unsafe { (Runner::compiled(entry), Runner::compiled(entry_tested)) };
        kernel.verify(&[
            ("jit", jit),
            ("jit with explicit null tests", jit_tested),
            ("rustc -O", Runner::Rust),
            ("interpreter", Runner::Interpreter(&r)),
        ]);
        let times = kernel.race(&[jit, Runner::Rust, jit_tested]);
        let interp = kernel.interpreted(&r);
        results.push((kernel.label, times[0], interp, times[1]));
        explicit.push((kernel.label, times[2]));
    }

    let (mut vs_rust, mut vs_interp) = (0.0f64, 0.0f64);
    for (name, jit, interp, rust) in &results {
        let slower = jit.median_ns() / rust.median_ns();
        let faster = interp.median_ns() / jit.median_ns();
        vs_rust += slower.ln();
        vs_interp += faster.ln();
        report.row(
            Row::new(
                "backend",
                format!("{name}: jit / rustc -O"),
                fmt_duration(jit.median),
            )
            .baseline(fmt_duration(rust.median))
            .ratio(format!("{slower:.2}×")),
        );
        report.row(
            Row::new(
                "backend",
                format!("{name}: interpreter / jit"),
                fmt_duration(interp.median),
            )
            .baseline(fmt_duration(jit.median))
            .ratio(format!("{faster:.0}× faster")),
        );
    }
    let k = results.len() as f64;
    let (geo_rust, geo_interp) = ((vs_rust / k).exp(), (vs_interp / k).exp());
    // The same kernels with the explicit null test before each access, in
    // the same race: what implicit null checks gained.
    let mut tested_vs_rust = 0.0f64;
    for ((name, jit, _, rust), (_, tested)) in results.iter().zip(&explicit) {
        tested_vs_rust += (tested.median_ns() / rust.median_ns()).ln();
        report.row(
            Row::new(
                "backend",
                format!("{name}: explicit null tests / implicit"),
                fmt_duration(tested.median),
            )
            .baseline(fmt_duration(jit.median))
            .ratio(format!("{:.2}×", tested.median_ns() / jit.median_ns())),
        );
    }
    let geo_tested = (tested_vs_rust / k).exp();
    report.row(
        Row::new(
            "backend",
            "kernel suite geomean: jit vs rustc -O",
            format!("{geo_rust:.2}×"),
        )
        .target("≤ 1.5× rustc -O", geo_rust <= 1.5),
    );
    report.row(
        Row::new(
            "backend",
            "  for comparison: with explicit null tests, jit vs rustc -O",
            format!("{geo_tested:.2}×"),
        )
        .ratio(format!("implicit {:.2}× faster", geo_tested / geo_rust)),
    );
    report.row(
        Row::new(
            "backend",
            "kernel suite geomean: jit vs interpreter",
            format!("{geo_interp:.0}× faster"),
        )
        .target("≥ 10× faster", geo_interp >= 10.0),
    );
    // The same figure against the other side's target (BRIEF §11 and
    // issue 15 quote it): one definition, two targets, two met columns.
    report.row(
        Row::new(
            "backend",
            "kernel suite geomean: interpreter within 30× of compiled",
            format!("{geo_interp:.0}×"),
        )
        .target("≤ 30×", geo_interp <= 30.0),
    );
}

/// Runs both parts.
pub fn run(report: &mut Report) {
    cold_compile(report);
    kernels(report);
}
