//! Fuzzes the SDN parser, serializer and serde path on arbitrary text:
//! nothing panics; whatever parses writes back and re-parses to the same
//! value; CRLF line endings give the same result as LF; `Note::parse`
//! (which reads notes in the writer's layout directly) gives exactly what
//! the general serde reader gives.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let parsed = sdn::parse(text);
    if let Ok(doc) = &parsed {
        let written = sdn::write_document(doc).expect("a parsed document can be written");
        let again = sdn::parse(&written).expect("written text parses");
        assert_eq!(&again, doc, "round trip changed the value:\n{written}");
        assert_eq!(
            sdn::write_document(&again).expect("writes"),
            written,
            "writing is not canonical"
        );
    }
    if !text.contains('\r') {
        let crlf = sdn::parse(&text.replace('\n', "\r\n"));
        match (&parsed, &crlf) {
            (Ok(a), Ok(b)) => assert_eq!(a, b),
            (Err(a), Err(b)) => assert_eq!(a.location(), b.location()),
            _ => panic!("CRLF changed the outcome: {parsed:?} vs {crlf:?}"),
        }
    }
    let _ = sdn::from_str::<sdn::Value>(text);
    let note = sdn::note::Note::parse(text);
    if !text.contains(sdn::note::END_LINE) {
        let general = sdn::from_str::<sdn::note::Note>(text);
        match (&note, &general) {
            (Ok(a), Ok(b)) => assert_eq!(a, b, "the two note readers disagree"),
            (Err(a), Err(b)) => assert_eq!(a.to_string(), b.to_string()),
            _ => panic!("the note readers disagree: {note:?} vs {general:?}"),
        }
    }
});
