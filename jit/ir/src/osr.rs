//! Entries into the middle of a function, for on-stack replacement: a
//! loop that grew hot while one call of a function runs in the interpreter
//! continues in compiled code from its header.
//!
//! [`loop_entry`] derives, from a concrete function and one of its loop
//! headers, a function of its own that starts at that header. It takes one
//! argument, a pointer to the *transfer buffer*: one 8-byte slot per value
//! the loop needs, in the order [`LoopEntry::transfer`] lists them, each
//! holding the value's canonical 64-bit form (the interpreter's register
//! contents: integers extended from their width, `f32` bits in the low
//! half, `bool` as 0 or 1). Its entry block loads every slot with the
//! value's own type and branches to the header; the rest is the part of
//! the original function the header reaches, registers renumbered in
//! definition order. It returns what the original function returns, so
//! the interpreted call that transfers returns the entry's result.
//!
//! What the loop needs is its header's parameters followed by every
//! register that the reachable part uses and does not define (values
//! computed before the loop, function parameters among them): with SSA
//! block parameters those are all the state there is.

use std::collections::HashMap;

use crate::ir::{
    Block, BlockCall, BlockId, Function, Inst, Op, Reg, Signature, TemplateName, Terminator, Type,
};
use crate::verify::RegTypes;
use crate::{Error, ErrorKind};

/// A function entering another at a loop header.
#[derive(Clone, Debug)]
pub struct LoopEntry {
    /// The derived function: one `ptr<i64>` parameter (the transfer
    /// buffer), the original's result type.
    pub function: Function,
    /// The type of each of its registers.
    pub reg_types: RegTypes,
    /// Registers of the *original* function whose values go into the
    /// transfer buffer, slot by slot.
    pub transfer: Vec<Reg>,
}

/// The name of the entry into `symbol` at block `header`.
#[must_use]
pub fn entry_name(symbol: &str, header: BlockId) -> String {
    format!("{symbol}#osr{}", header.0)
}

/// Derives the entry into `f` at `header` (see the module documentation).
/// `types` are `f`'s register types, as the verifier returned them.
///
/// # Errors
///
/// [`ErrorKind::NoLoopEntry`] for a header that is not a block of `f`, is
/// its entry block (which no branch targets) or lies inside an enclosing
/// loop (whose header dominates it: its values would be defined twice);
/// [`ErrorKind::Malformed`] for registers without a type.
pub fn loop_entry(f: &Function, types: &RegTypes, header: BlockId) -> Result<LoopEntry, Error> {
    let h = usize::try_from(header.0).unwrap_or(usize::MAX);
    let refuse = |reason| {
        Err(Error::new(ErrorKind::NoLoopEntry {
            block: header.0,
            reason,
        }))
    };
    if h == 0 || h >= f.blocks.len() {
        return refuse("not a block that branches reach");
    }
    let reached = reachable_from(f, h);
    // A block dominating the header that the header reaches again (the
    // header of an enclosing loop) would define its values a second time.
    if strict_dominators(f, h).into_iter().any(|d| reached[d]) {
        return refuse("it lies inside an enclosing loop; enter that loop instead");
    }
    let transfer = live_into(f, &reached, h);
    let type_of = |r: Reg| {
        types
            .get(r)
            .cloned()
            .ok_or_else(|| Error::new(ErrorKind::Malformed("a register has no type")))
    };

    // Register 0 is the buffer; then one load (and its address) per slot.
    let mut map: HashMap<Reg, Reg> = HashMap::new();
    let mut new_types = vec![Type::Ptr(Box::new(Type::I64))];
    let buffer = Reg(0);
    let mut next = 1u32;
    let mut fresh = |ty: Type, new_types: &mut Vec<Type>| {
        new_types.push(ty);
        next += 1;
        Reg(next - 1)
    };
    let params = &f.blocks[h].params;
    let mut entry_insts = Vec::with_capacity(transfer.len() * 2);
    let mut header_args = Vec::with_capacity(params.len());
    for (slot, &r) in transfer.iter().enumerate() {
        let ty = type_of(r)?;
        let addr = fresh(Type::Ptr(Box::new(ty.clone())), &mut new_types);
        entry_insts.push(Inst {
            result: Some(addr),
            op: Op::Addr {
                ty: Type::Ptr(Box::new(ty.clone())),
                base: buffer,
                index: None,
                scale: 1,
                disp: i64::try_from(slot * 8).unwrap_or(i64::MAX),
            },
        });
        let value = fresh(ty.clone(), &mut new_types);
        entry_insts.push(Inst {
            result: Some(value),
            op: Op::Load {
                ty,
                addr,
                index: None,
            },
        });
        if slot < params.len() {
            header_args.push(value);
        } else {
            map.insert(r, value);
        }
    }

    // The reached blocks keep their order; block 0 is the new entry.
    let order: Vec<usize> = (0..f.blocks.len()).filter(|&b| reached[b]).collect();
    let new_id: HashMap<usize, u32> = order
        .iter()
        .enumerate()
        .map(|(k, &b)| (b, u32::try_from(k + 1).unwrap_or(u32::MAX)))
        .collect();
    let mut blocks = Vec::with_capacity(order.len() + 1);
    let header_id = BlockId(new_id[&h]);
    blocks.push(Block {
        params: Vec::new(),
        insts: entry_insts,
        term: Terminator::Br(BlockCall {
            block: header_id,
            args: header_args,
        }),
    });
    for &b in &order {
        let block = &f.blocks[b];
        let mut out = Block {
            params: Vec::with_capacity(block.params.len()),
            insts: Vec::with_capacity(block.insts.len()),
            term: Terminator::Ret(None),
        };
        for (r, ty) in &block.params {
            let n = fresh(ty.clone(), &mut new_types);
            map.insert(*r, n);
            out.params.push((n, ty.clone()));
        }
        for inst in &block.insts {
            let op = inst.op.clone().map_regs(|r| rename(&map, r))?;
            let result = match inst.result {
                Some(r) => {
                    let n = fresh(type_of(r)?, &mut new_types);
                    map.insert(r, n);
                    Some(n)
                }
                None => None,
            };
            out.insts.push(Inst { result, op });
        }
        out.term = rename_term(&block.term, &map, &new_id)?;
        blocks.push(out);
    }
    let function = Function {
        name: TemplateName::free(&entry_name(&f.name.to_string(), header)),
        type_params: Vec::new(),
        sig: Signature {
            params: vec![new_types[0].clone()],
            ret: f.sig.ret.clone(),
        },
        blocks,
    };
    Ok(LoopEntry {
        function,
        reg_types: RegTypes(new_types),
        transfer,
    })
}

/// Blocks dominating `b` other than itself (block 0 first).
fn strict_dominators(f: &Function, b: usize) -> Vec<usize> {
    let n = f.blocks.len();
    let mut preds = vec![Vec::new(); n];
    for (k, block) in f.blocks.iter().enumerate() {
        for t in block.term.targets() {
            if let Some(p) = preds.get_mut(usize::try_from(t.block.0).unwrap_or(usize::MAX)) {
                p.push(k);
            }
        }
    }
    // dom[k]: the blocks dominating k, as a bit set; iterated to a fixed point.
    let all = vec![true; n];
    let mut dom: Vec<Vec<bool>> = (0..n)
        .map(|k| {
            if k == 0 {
                (0..n).map(|j| j == 0).collect()
            } else {
                all.clone()
            }
        })
        .collect();
    let mut changed = true;
    while changed {
        changed = false;
        for k in 1..n {
            let mut next = all.clone();
            for &p in &preds[k] {
                for (j, bit) in next.iter_mut().enumerate() {
                    *bit &= dom[p][j];
                }
            }
            next[k] = true;
            if next != dom[k] {
                dom[k] = next;
                changed = true;
            }
        }
    }
    (0..n).filter(|&d| d != b && dom[b][d]).collect()
}

/// Blocks reachable from `from` (itself included).
fn reachable_from(f: &Function, from: usize) -> Vec<bool> {
    let mut seen = vec![false; f.blocks.len()];
    let mut work = vec![from];
    while let Some(b) = work.pop() {
        if std::mem::replace(&mut seen[b], true) {
            continue;
        }
        for t in f.blocks[b].term.targets() {
            let k = usize::try_from(t.block.0).unwrap_or(usize::MAX);
            if k < seen.len() && !seen[k] {
                work.push(k);
            }
        }
    }
    seen
}

/// The header's parameters, then every register the reached blocks use
/// without defining, in increasing order.
fn live_into(f: &Function, reached: &[bool], header: usize) -> Vec<Reg> {
    let mut defined = std::collections::HashSet::new();
    let mut used = std::collections::BTreeSet::new();
    for (_, block) in f.blocks.iter().enumerate().filter(|(b, _)| reached[*b]) {
        defined.extend(block.params.iter().map(|(r, _)| *r));
        for inst in &block.insts {
            defined.extend(inst.result);
            inst.op.for_each_use(|r| {
                used.insert(*r);
            });
        }
        block.term.for_each_use(|r| {
            used.insert(*r);
        });
    }
    let mut transfer: Vec<Reg> = f.blocks[header].params.iter().map(|(r, _)| *r).collect();
    transfer.extend(used.into_iter().filter(|r| !defined.contains(r)));
    transfer
}

fn rename(map: &HashMap<Reg, Reg>, r: Reg) -> Result<Reg, Error> {
    map.get(&r)
        .copied()
        .ok_or_else(|| Error::new(ErrorKind::UndefinedRegister(r.0)))
}

fn rename_term(
    term: &Terminator,
    map: &HashMap<Reg, Reg>,
    ids: &HashMap<usize, u32>,
) -> Result<Terminator, Error> {
    let call = |t: &BlockCall| -> Result<BlockCall, Error> {
        let k = usize::try_from(t.block.0).unwrap_or(usize::MAX);
        let block = ids
            .get(&k)
            .copied()
            .ok_or_else(|| Error::new(ErrorKind::NoSuchBlock(t.block.0)))?;
        Ok(BlockCall {
            block: BlockId(block),
            args: t
                .args
                .iter()
                .map(|&r| rename(map, r))
                .collect::<Result<_, _>>()?,
        })
    };
    Ok(match term {
        Terminator::Br(t) => Terminator::Br(call(t)?),
        Terminator::CondBr {
            cond,
            then,
            otherwise,
        } => Terminator::CondBr {
            cond: rename(map, *cond)?,
            then: call(then)?,
            otherwise: call(otherwise)?,
        },
        Terminator::Ret(v) => Terminator::Ret(v.map(|r| rename(map, r)).transpose()?),
        Terminator::Trap(code) => Terminator::Trap(*code),
    })
}
