//! An instance of a verified library is checked only for the rules that
//! substituting concrete types can newly break (`verify::verify_instance`);
//! the rest (operand types, classes, branch arguments, returns) follows
//! from the template having passed generically. These tests compare that
//! check with the full verifier: instantiating from a verified library and
//! from an unverified copy of the same text must give the same instance or
//! the same error, for every template of the collections library with
//! admissible and deliberately troublesome type arguments, and for random
//! generic templates with random type arguments.

mod common;

use jit::instantiate::instantiate;
use jit::ir::{Constraint, IntType, Library, TemplateName, Type};
use jit::limits::MAX_TYPE_DEPTH;
use jit::verify::verify_library;
use proptest::prelude::*;

/// `text` parsed twice: the first library verified (so instances take the
/// reduced check), the second not (so they take the full verifier).
/// `None` when the text does not verify generically.
fn both(text: &str) -> Option<(Library, Library)> {
    let parse = || jit::text::parse_library(text).unwrap_or_else(|e| panic!("{e}\n{text}"));
    let (verified, plain) = (parse(), parse());
    verify_library(&verified).ok()?;
    assert!(verified.is_verified() && !plain.is_verified());
    Some((verified, plain))
}

/// Instantiates `name<args>` both ways and checks the outcomes agree;
/// returns whether the instance was accepted.
fn agree(verified: &Library, plain: &Library, name: &TemplateName, args: &[Type]) -> bool {
    let reduced = instantiate(verified, name, args);
    let full = instantiate(plain, name, args);
    match (reduced, full) {
        (Ok(a), Ok(b)) => {
            assert_eq!(a, b, "{name} {args:?}");
            true
        }
        (Err(a), Err(b)) => {
            assert_eq!(a, b, "{name} {args:?}");
            false
        }
        (a, b) => panic!("{name} {args:?}: reduced check {a:?}, full verifier {b:?}"),
    }
}

/// `ptr<…<inner>…>` with `levels` pointer levels.
fn pointers(inner: Type, levels: usize) -> Type {
    (0..levels).fold(inner, |t, _| t.ptr_to())
}

/// Type arguments for one parameter: every scalar, pointers whose depth
/// sits at the limit and one past it (alone and under a template's own
/// `ptr<T>`), and the library's structs, which no register may hold.
fn troublesome(lib: &Library) -> Vec<Type> {
    let mut all = Type::scalars();
    for levels in [1, MAX_TYPE_DEPTH - 2, MAX_TYPE_DEPTH - 1, MAX_TYPE_DEPTH] {
        all.push(pointers(Type::Int(IntType::U8), levels));
    }
    let structs = lib.items().iter().filter_map(|i| match i {
        jit::ir::Item::Struct(s) => Some(s),
        _ => None,
    });
    for s in structs {
        let args = vec![Type::Int(IntType::I32); s.type_params.len()];
        let ty = Type::Struct(Box::new(jit::ir::StructType {
            name: s.name.clone(),
            args,
        }));
        all.push(ty.clone().ptr_to());
        all.push(ty);
    }
    all
}

#[test]
fn collections_instances_agree_with_the_full_verifier() {
    let text = jit::library::COLLECTIONS;
    let (verified, plain) = both(text).expect("the collections library verifies");
    let candidates = troublesome(&verified);
    let (mut accepted, mut rejected) = (0, 0);
    for template in verified.functions() {
        let mut lists: Vec<Vec<Type>> = match template.type_params.len() {
            0 => vec![vec![]],
            1 => candidates.iter().map(|t| vec![t.clone()]).collect(),
            _ => candidates
                .iter()
                .flat_map(|a| {
                    candidates
                        .iter()
                        .step_by(3)
                        .map(move |b| vec![a.clone(), b.clone()])
                })
                .collect(),
        };
        lists.extend(common::type_args(template));
        for args in lists {
            if agree(&verified, &plain, &template.name, &args) {
                accepted += 1;
            } else {
                rejected += 1;
            }
        }
    }
    assert!(
        accepted > 300 && rejected > 300,
        "{accepted} accepted, {rejected} rejected"
    );
}

/// One instruction of a generated template, as text over the template's
/// parameters `%x: T`, `%p: ptr<T>`, `%q: ptr<Pair<T, i64>>`, `%i: i64`
/// and the bool `%c`; `{}` stands for the fresh register it defines.
const MENU: &[&str] = &[
    "{} = const T 0",
    "{} = const T 127",
    "{} = const T 128",
    "{} = const T 255",
    "{} = const T 256",
    "{} = const T -1",
    "{} = const T 40000",
    "{} = const T 2147483648",
    "{} = const T 4294967296",
    "{} = const T 1.5",
    "{} = add T %x, %x",
    "{} = rem T %x, %x",
    "{} = and T %x, %x",
    "{} = shl T %x, %x",
    "{} = neg T %x",
    "{} = not T %x",
    "{} = cmp eq T %x, %x",
    "{} = cmp lt T %x, %x",
    "{} = select T %c, %x, %x",
    "{} = bitcast T %x to i32",
    "{} = bitcast T %x to i64",
    "{} = bitcast T %x to f32",
    "{} = bitcast T %x to u8",
    "{} = cast T %x to i64",
    "{} = cast T %x to f64",
    "{} = load T %p[%i]",
    "store T %x, %p[%i]",
    "{} = elem_addr T %p, %i",
    "{} = elem_addr ptr<T> %pp, %i",
    "{} = size_of T",
    "{} = align_of Pair<T, ptr<T>>",
    "{} = field_addr Pair<T, i64> %q, a",
    "{} = field_addr Pair<T, i64> %q, b",
    "{} = call id<T>(%x)",
    "{} = call id<ptr<T>>(%p)",
    "{} = call wrap<T>(%x)",
    "{} = func_addr id<T>",
    "{} = call_indirect %f(%x) : fn(T) -> T",
    "{} = cast ptr<T> %p to ptr<u8>",
    "{} = cast ptr<T> %p to i64",
];

/// A library with a generic template `g<T: constraint>` whose entry block
/// runs the menu entries `picks` in order and returns `%x`.
fn generated(constraint: Constraint, picks: &[usize]) -> String {
    let mut body = String::new();
    for (k, &pick) in picks.iter().enumerate() {
        let line = MENU[pick % MENU.len()].replace("{}", &format!("%v{k}"));
        body.push_str("    ");
        body.push_str(&line);
        body.push('\n');
    }
    format!(
        "struct Pair<A: any, B: any> {{\n    a: A,\n    b: B,\n}}\n\
         fn id<X: any>(%a: X) -> X {{\nentry:\n    ret %a\n}}\n\
         fn wrap<X: any>(%a: X) -> X {{\nentry:\n    %r = call id<X>(%a)\n    ret %r\n}}\n\
         fn g<T: {}>(%x: T, %p: ptr<T>, %pp: ptr<ptr<T>>, %q: ptr<Pair<T, i64>>, %i: i64, \
         %f: fn(T) -> T) -> T {{\nentry:\n    %c = cmp eq i64 %i, %i\n{body}    ret %x\n}}\n",
        constraint.name()
    )
}

fn constraint() -> impl Strategy<Value = Constraint> {
    prop_oneof![
        Just(Constraint::Any),
        Just(Constraint::Int),
        Just(Constraint::Float),
        Just(Constraint::Num),
    ]
}

/// A type argument: a scalar, a pointer near the depth limit, or a struct.
fn argument() -> impl Strategy<Value = Type> {
    let pair = |a: Type, b: Type| {
        Type::Struct(Box::new(jit::ir::StructType {
            name: "Pair".into(),
            args: vec![a, b],
        }))
    };
    prop_oneof![
        4 => common::scalar_type(),
        2 => (common::scalar_type(), MAX_TYPE_DEPTH - 4..=MAX_TYPE_DEPTH)
            .prop_map(|(t, levels)| pointers(t, levels)),
        1 => (common::scalar_type(), 0usize..3)
            .prop_map(move |(t, levels)| pointers(pair(t.clone(), t), levels)),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(400))]

    /// Random generic templates that verify, with random arguments: the
    /// reduced check accepts exactly what the full verifier accepts and
    /// gives the same instance or the same error.
    #[test]
    fn generated_instances_agree_with_the_full_verifier(
        c in constraint(),
        picks in prop::collection::vec(0usize..MENU.len(), 1..8),
        args in prop::collection::vec(argument(), 1..4),
    ) {
        let text = generated(c, &picks);
        let Some((verified, plain)) = both(&text) else {
            return Ok(());
        };
        let g = TemplateName::free("g");
        for a in args {
            agree(&verified, &plain, &g, &[a]);
        }
    }
}

/// The generator is worth its name: enough templates verify, and both
/// outcomes occur among their instances.
#[test]
fn generated_templates_verify_and_their_instances_both_pass_and_fail() {
    let mut rng = common::Rng(0x5eed);
    let arguments = [
        Type::Int(IntType::I8),
        Type::Int(IntType::U32),
        Type::F32,
        Type::F64,
        Type::Bool,
        pointers(Type::Int(IntType::I64), MAX_TYPE_DEPTH - 1),
        pointers(Type::F64, 2),
    ];
    let constraints = [
        Constraint::Any,
        Constraint::Int,
        Constraint::Float,
        Constraint::Num,
    ];
    let (mut verified_count, mut accepted, mut rejected) = (0, 0, 0);
    for _ in 0..300 {
        let c = constraints[usize::try_from(rng.next() % 4).expect("small")];
        let picks: Vec<usize> = (0..1 + rng.next() % 6)
            .map(|_| usize::try_from(rng.next()).expect("64-bit") % MENU.len())
            .collect();
        let Some((verified, plain)) = both(&generated(c, &picks)) else {
            continue;
        };
        verified_count += 1;
        for a in &arguments {
            if agree(
                &verified,
                &plain,
                &TemplateName::free("g"),
                std::slice::from_ref(a),
            ) {
                accepted += 1;
            } else {
                rejected += 1;
            }
        }
    }
    assert!(verified_count > 50, "{verified_count} templates verified");
    assert!(
        accepted > 100 && rejected > 100,
        "{accepted} accepted, {rejected} rejected"
    );
}
