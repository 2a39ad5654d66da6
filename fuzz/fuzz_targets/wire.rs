//! libFuzzer entry point for [`barista_fuzz::wire`]; the replay test calls the same function.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| barista_fuzz::wire::run(data));
