//! `smfjit_addr_info`: which symbol and module an address belongs to
//! ([`Loader::address_info`](crate::Loader::address_info)), the loader's
//! `dladdr`, generated code included.

use std::cell::RefCell;
use std::ffi::{CString, c_char, c_int, c_void};
use std::mem::{offset_of, size_of};

use super::handle::{fill, loader_and_size};
use super::{SMFJIT_ENOTFOUND, SMFJIT_OK, set_last_error};
use crate::address::AddressOwner;

/// `smfjit_addr_info`'s `owner`: a loaded module's code or data.
pub const SMFJIT_ADDR_MODULE: c_int = 1;
/// `owner`: an instantiation compiled on its miss, or a tiered
/// instantiation's entry stub.
pub const SMFJIT_ADDR_INSTANCE: c_int = 2;
/// `owner`: a tiered instantiation's code compiled once hot (its body or a
/// loop entry).
pub const SMFJIT_ADDR_TIER_CODE: c_int = 3;

/// `struct smfjit_addr_info` of the header, field for field.
#[repr(C)]
#[derive(Debug)]
pub struct SmfjitAddrInfo {
    /// In: the size of the caller's struct; out: the bytes filled.
    pub size: usize,
    /// `SMFJIT_ADDR_MODULE`, `SMFJIT_ADDR_INSTANCE` or
    /// `SMFJIT_ADDR_TIER_CODE`.
    pub owner: c_int,
    /// The symbol, or null (a module's address below its first export).
    pub symbol: *const c_char,
    /// Where the symbol starts, or null.
    pub symbol_address: *const c_void,
    /// The module's path, or null.
    pub module_path: *const c_char,
    /// The module's handle (`smfjit_module`), or 0.
    pub module: u64,
}

/// The smallest `size` accepted: up to and including `owner`.
const MIN_SIZE: usize = offset_of!(SmfjitAddrInfo, owner) + size_of::<c_int>();

thread_local! {
    /// The texts the last answer on this thread points to.
    static TEXTS: RefCell<(CString, CString)> = RefCell::default();
}

/// Keeps `text` for the calling thread until its next
/// `smfjit_addr_info` and returns a pointer to it (null for `None`).
fn keep(text: Option<&str>, which: fn(&mut (CString, CString)) -> &mut CString) -> *const c_char {
    let Some(text) = text else {
        return std::ptr::null();
    };
    let text = CString::new(text.split('\0').next().unwrap_or("")).unwrap_or_default();
    TEXTS.with(|texts| {
        let mut texts = texts.borrow_mut();
        let slot = which(&mut texts);
        *slot = text;
        slot.as_ptr()
    })
}

/// Fills `info` with what holds `address`: 0, `SMFJIT_ENOTFOUND` when the
/// loader holds nothing there (padding between functions included), or
/// `SMFJIT_EINVAL`. Set `info->size` to `sizeof(struct smfjit_addr_info)`
/// first; the fields that fit are filled and `info->size` becomes the
/// bytes filled. The strings belong to the library and stay valid until
/// the calling thread's next `smfjit_addr_info`. A linear scan: for
/// debugging and error reports, not hot paths.
///
/// # Safety
/// `loader` is null or a handle from a `smfjit_loader_new` function;
/// `info` is null or valid for reads and writes of `info->size` bytes.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn smfjit_addr_info(
    loader: *mut super::smfjit_loader,
    address: *const c_void,
    info: *mut SmfjitAddrInfo,
) -> c_int {
    // SAFETY: forwarded contracts.
    let (loader, asked) =
        match unsafe { loader_and_size(loader, info, MIN_SIZE, "smfjit_addr_info") } {
            Ok(checked) => checked,
            Err(code) => return code,
        };
    let Some(found) = loader.address_info(address as usize) else {
        set_last_error(
            SMFJIT_ENOTFOUND,
            &format!("no module or generated code of this loader holds {address:p}"),
        );
        return SMFJIT_ENOTFOUND;
    };
    let path = found
        .module
        .as_ref()
        .map(|module| module.path().display().to_string());
    let answer = SmfjitAddrInfo {
        size: size_of::<SmfjitAddrInfo>(),
        owner: match found.owner {
            AddressOwner::Module => SMFJIT_ADDR_MODULE,
            AddressOwner::Instance => SMFJIT_ADDR_INSTANCE,
            AddressOwner::TierCode => SMFJIT_ADDR_TIER_CODE,
        },
        symbol: keep(found.symbol.as_deref(), |texts| &mut texts.0),
        symbol_address: found
            .symbol_address
            .map_or(std::ptr::null(), |a| a as *const c_void),
        module_path: keep(path.as_deref(), |texts| &mut texts.1),
        module: found.module.as_ref().map_or(0, |module| module.id()),
    };
    // Whole fields only: the caller's struct ends at one of its fields.
    let filled = [
        offset_of!(SmfjitAddrInfo, owner) + size_of::<c_int>(),
        offset_of!(SmfjitAddrInfo, symbol) + size_of::<usize>(),
        offset_of!(SmfjitAddrInfo, symbol_address) + size_of::<usize>(),
        offset_of!(SmfjitAddrInfo, module_path) + size_of::<usize>(),
        size_of::<SmfjitAddrInfo>(),
    ]
    .into_iter()
    .filter(|&end| end <= asked)
    .max()
    .unwrap_or(MIN_SIZE);
    // SAFETY: `filled` is at most the caller's size, writable by
    // contract, and at most the struct's.
    unsafe { fill(info, &answer, filled) };
    SMFJIT_OK
}
