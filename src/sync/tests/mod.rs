//! Tests of the sync front end.

mod fixtures;
mod parse_tests;
