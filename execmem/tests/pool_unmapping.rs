//! Released pages are gone from `/proc/self/maps`: a published page when
//! its last handle goes, an abandoned batch's page with the batch, and the
//! pool's spare pages with the allocator. One test runs the three in turn,
//! alone in its binary, so that no other thread maps memory meanwhile (the
//! kernel hands a just-released address out again at once, and a test
//! harness starting a test's thread maps its stack).
#![cfg(target_os = "linux")]

mod common;
mod pool_support;

use common::{lines_over, read_maps_into};
use pool_support::{maps_buffer, pooled, publish_one, unmapped};

#[test]
fn released_pages_are_unmapped() {
    a_published_page_never_returns_to_the_pool();
    an_abandoned_batch_unmaps_its_pooled_page();
    dropping_the_memory_unmaps_every_spare_page_it_never_handed_out();
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

fn dropping_the_memory_unmaps_every_spare_page_it_never_handed_out() {
    let mut buffer = maps_buffer();
    let memory = pooled(8);
    let page = memory.page_size();
    let published = publish_one(&memory);
    // The refill is one mapping handed out from its lowest page up: the
    // seven spares follow the published page.
    let first = published.reservation().address();
    let spares = first + page..first + 8 * page;
    assert!(!lines_over(&read_maps_into(&mut buffer), &spares).is_empty());
    drop(memory);
    assert!(
        lines_over(&read_maps_into(&mut buffer), &spares).is_empty(),
        "the spares are gone with the memory"
    );
    // The published page lives on with its handle.
    assert!(!unmapped(&mut buffer, first, page));
    drop(published);
    assert!(unmapped(&mut buffer, first, page));
}
