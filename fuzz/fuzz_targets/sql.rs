//! libFuzzer entry point for [`barista_fuzz::sql`]; the replay test calls the same function.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| barista_fuzz::sql::run(data));
