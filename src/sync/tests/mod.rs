//! Tests of the sync front end.

mod check_tests;
mod fixtures;
mod load_tests;
mod parse_tests;
mod props;
