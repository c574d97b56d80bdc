//! SDN 1.0 (Simple Data Notation): parser, serializer, serde support and the
//! typed `note.sdn` schema. Work on this crate has not started yet.
#![forbid(unsafe_code)]
