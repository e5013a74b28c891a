//! Tests of the sync front end.

mod check_tests;
mod fixtures;
mod parse_tests;
