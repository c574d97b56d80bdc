//! Released pages are gone from `/proc/self/maps`: a published page when
//! its last handle goes, an abandoned batch's page with the batch, and the
//! pool's spare pages when the process reserve they went to with the
//! allocator is released (or at once, beyond the reserve's size). One test runs the three in turn,
//! alone in its binary, so that no other thread maps memory meanwhile (the
//! kernel hands a just-released address out again at once, and a test
//! harness starting a test's thread maps its stack).
#![cfg(target_os = "linux")]

mod common;
mod pool_support;

use common::{lines_over, read_maps_into};
use pool_support::{maps_buffer, pooled, pooled_shared, publish_one, unmapped};

#[test]
fn released_pages_are_unmapped() {
    a_published_page_never_returns_to_the_pool();
    an_abandoned_batch_unmaps_its_pooled_page();
    dropping_the_memory_leaves_its_spares_to_the_next_allocator();
    spares_beyond_the_reserve_are_unmapped_with_the_memory();
}

fn a_published_page_never_returns_to_the_pool() {
    let memory = pooled(8);
    let page = memory.page_size();
    let mut buffer = maps_buffer();
    let first = publish_one(&memory);
    let address = first.reservation().address();
    drop(first);
    assert!(unmapped(&mut buffer, address, page));
    assert_eq!(memory.stats().bytes_pooled, 7 * page);
    // The seven spares left are all handed out before any refill; none is
    // the released page.
    let rest: Vec<_> = (0..7).map(|_| publish_one(&memory)).collect();
    assert!(rest.iter().all(|f| f.reservation().address() != address));
    assert_eq!(memory.stats().bytes_pooled, 0);
}

fn an_abandoned_batch_unmaps_its_pooled_page() {
    let memory = pooled(4);
    let page = memory.page_size();
    let mut buffer = maps_buffer();
    let mut batch = memory.batch_with_capacity(page);
    let r = batch.reserve("abandoned", 100, 16).expect("reserved");
    assert_eq!(memory.stats().bytes_writable, page);
    assert_eq!(memory.stats().bytes_pooled, 3 * page);
    drop(batch);
    assert!(unmapped(&mut buffer, r.address(), page));
    let stats = memory.stats();
    assert_eq!(stats.bytes_reserved, 0);
    assert_eq!(stats.bytes_pooled, 3 * page, "the page did not come back");
}

fn dropping_the_memory_leaves_its_spares_to_the_next_allocator() {
    let mut buffer = maps_buffer();
    let memory = pooled_shared(8);
    let page = memory.page_size();
    let published = publish_one(&memory);
    // The refill is one mapping handed out from its lowest page up: the
    // seven spares follow the published page.
    let first = published.reservation().address();
    let spares = first + page..first + 8 * page;
    assert!(!lines_over(&read_maps_into(&mut buffer), &spares).is_empty());
    drop(memory);
    // They wait in the process reserve; the next allocator takes them in
    // the same order before mapping anything.
    assert!(!lines_over(&read_maps_into(&mut buffer), &spares).is_empty());
    let next = pooled_shared(8);
    let reused = publish_one(&next);
    assert_eq!(reused.reservation().address(), first + page);
    assert_eq!(next.stats().bytes_pooled, 6 * page);
    drop(next);
    // Released, the reserve's pages are gone.
    assert_eq!(execmem::release_spare_pages(), 6);
    let rest = first + 2 * page..first + 8 * page;
    assert!(lines_over(&read_maps_into(&mut buffer), &rest).is_empty());
    // The published pages live on with their handles.
    assert!(!unmapped(&mut buffer, first, page));
    drop(published);
    assert!(unmapped(&mut buffer, first, page));
    drop(reused);
    assert!(unmapped(&mut buffer, first + page, page));
}

fn spares_beyond_the_reserve_are_unmapped_with_the_memory() {
    let mut buffer = maps_buffer();
    let pages = execmem::limits::PROCESS_SPARE_PAGES + 9;
    let memory = pooled_shared(pages);
    let page = memory.page_size();
    let published = publish_one(&memory);
    let first = published.reservation().address();
    drop(memory);
    // The lowest spares are kept, the highest nine unmapped.
    let kept = first + page..first + (1 + execmem::limits::PROCESS_SPARE_PAGES) * page;
    let beyond = kept.end..first + pages * page;
    let maps = read_maps_into(&mut buffer);
    assert!(!lines_over(&maps, &kept).is_empty());
    assert!(lines_over(&maps, &beyond).is_empty());
    assert_eq!(
        execmem::release_spare_pages(),
        execmem::limits::PROCESS_SPARE_PAGES
    );
    drop(published);
}
